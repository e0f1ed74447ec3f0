-- apply_entry: replace one time entry's contribution to every total it touches, record its
-- state and append one change event, all in one atomic step.
--
-- KEYS[1] meta hash      (id -> "<status>|<fingerprint>|<day>"; status R running, L stopped, D deleted)
-- KEYS[2] entries hash   (id -> state JSON)
-- KEYS[3] contrib hash   (id -> JSON [[dim, field, delta], ...] added to the day's total hashes)
-- KEYS[4] running hash   (id -> state JSON of running timers)
-- KEYS[5] changes stream
-- ARGV[1] key prefix "cw:{ws}:"  (day hashes "<prefix>d:<day>:<dim>", month rollups
--         "<prefix>m:<YYYY-MM>:<dim>", indexes "<prefix>ix:<day>"
--         and name hashes "<prefix>n:<kind>" are built from it; all share the hash tag, so they
--         are in the same cluster slot as KEYS)
-- ARGV[2] entry id
-- ARGV[3] kind: create | update | delete | restore | sync
-- ARGV[4] new status: R | L | D
-- ARGV[5] fingerprint of the new state
-- ARGV[6] day (YYYY-MM-DD in the reporting time zone) of the new state, "" if unknown
-- ARGV[7] state JSON ("" when a delete carries no usable state)
-- ARGV[8] contribution JSON of the new state ("[]" for running, deleted)
-- ARGV[9] start, epoch seconds (index score)
-- ARGV[10] stream MAXLEN (approximate)
-- ARGV[11] display JSON (names for the change feed)
-- ARGV[12..] name records as triples: kind, id, JSON
-- Returns {outcome, stream id}: outcome is started|stopped|created|updated|deleted|restored when
-- applied (stream id set), or duplicate|stale|deleted-before when nothing changed (stream id "").

local prefix, id, kind, status, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local day, state, contrib = ARGV[6], ARGV[7], ARGV[8]

for i = 12, #ARGV, 3 do
  redis.call('HSET', prefix .. 'n:' .. ARGV[i], ARGV[i + 1], ARGV[i + 2])
end

local old_status, old_fp, old_day
local meta = redis.call('HGET', KEYS[1], id)
if meta then
  old_status, old_fp, old_day = string.match(meta, '^(%a)|([^|]*)|(.*)$')
end

if kind == 'delete' then
  if old_status == 'D' then return {'duplicate', ''} end
elseif kind == 'create' then
  -- A creation is the first state of any entry: whatever is stored is at least as new.
  if old_status then
    if old_fp == fp then return {'duplicate', ''} end
    return {'stale', ''}
  end
else
  if old_status == 'D' and kind == 'update' then return {'deleted-before', ''} end
  if old_status and old_status ~= 'D' and old_fp == fp then return {'duplicate', ''} end
  -- A stopped entry never runs again in Clockify, so a running state after a stop is late.
  if old_status == 'L' and status == 'R' and kind ~= 'restore' then return {'stale', ''} end
end

local old_contrib = redis.call('HGET', KEYS[3], id) or '[]'
if kind == 'delete' then
  local old_state = redis.call('HGET', KEYS[2], id)
  if old_state then state = old_state end
  if day == '' and old_day then day = old_day end
end
if state == '' then state = cjson.encode({id = id}) end

-- Net the old and new contributions first, so unchanged fields cost nothing. Every day delta
-- also goes to the month's rollup ("<prefix>m:<YYYY-MM>:<dim>"), so a month reads one hash.
local deltas, order = {}, {}
local function add(key, field, delta)
  if not deltas[key] then deltas[key] = {}; order[#order + 1] = key end
  deltas[key][field] = (deltas[key][field] or 0) + delta
end
local function collect(on_day, list, sign)
  local month = string.sub(on_day, 1, 7)
  for _, item in ipairs(list) do
    add(prefix .. 'd:' .. on_day .. ':' .. item[1], item[2], sign * item[3])
    add(prefix .. 'm:' .. month .. ':' .. item[1], item[2], sign * item[3])
  end
end
if old_day and old_day ~= '' and old_status ~= 'D' then
  collect(old_day, cjson.decode(old_contrib), -1)
end
if status ~= 'D' then collect(day, cjson.decode(contrib), 1) end
for _, key in ipairs(order) do
  for field, delta in pairs(deltas[key]) do
    if delta ~= 0 then
      if redis.call('HINCRBY', key, field, delta) == 0 then redis.call('HDEL', key, field) end
    end
  end
end

if old_day and old_day ~= '' and (old_day ~= day or status == 'D') then
  redis.call('ZREM', prefix .. 'ix:' .. old_day, id)
end
if status ~= 'D' and day ~= '' then
  redis.call('ZADD', prefix .. 'ix:' .. day, ARGV[9], id)
end

redis.call('HSET', KEYS[1], id, status .. '|' .. fp .. '|' .. day)
redis.call('HSET', KEYS[2], id, state)
if status == 'D' then
  redis.call('HDEL', KEYS[3], id)
  contrib = '[]'
else
  redis.call('HSET', KEYS[3], id, contrib)
end
if status == 'R' then
  redis.call('HSET', KEYS[4], id, state)
else
  redis.call('HDEL', KEYS[4], id)
end

local action
if status == 'D' then
  action = 'deleted'
elseif kind == 'restore' or old_status == 'D' then
  action = 'restored'
elseif not old_status then
  action = (status == 'R') and 'started' or 'created'
elseif old_status == 'R' and status == 'L' then
  action = 'stopped'
else
  action = 'updated'
end

local prev = 'null'
if old_day and old_day ~= '' and old_status ~= 'D' then
  prev = '{"day":"' .. old_day .. '","f":' .. old_contrib .. '}'
end
local next_ = 'null'
if status ~= 'D' then next_ = '{"day":"' .. day .. '","f":' .. contrib .. '}' end
local event = '{"type":"entry","action":"' .. action .. '","entry":' .. state ..
  ',"running":' .. tostring(status == 'R') .. ',"prev":' .. prev .. ',"next":' .. next_ ..
  ',"names":' .. ARGV[11] .. '}'
local stream_id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[10], '*', 'd', event)
return {action, stream_id}
