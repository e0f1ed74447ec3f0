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
-- ARGV[12..] name records as triples: kind, id, JSON; a kind ending in "?" ("project?") is a
--         partial record, written only when the hash has none for that id
-- Returns {outcome, stream id}: outcome is started|stopped|created|updated|deleted|restored when
-- applied (stream id set), or duplicate|stale|deleted-before when nothing changed (stream id "");
-- or {"rejected", reason} when a total it touches holds something other than an integer or would
-- leave +-2^53: then nothing at all is written.
--
-- Redis does not roll back a script that fails part-way: the totals, the only writes that can
-- fail on what is stored, come first and are undone on a refusal.

local prefix, id, kind, status, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local day, state, contrib = ARGV[6], ARGV[7], ARGV[8]
-- Totals stay within 2^53, where Redis's int64, Lua's doubles and JSON readers all agree.
local LIMIT = 9007199254740992

-- Names ride along with every delivery, applied or not (a resent entry may carry a new name).
local function write_names()
  for i = 12, #ARGV, 3 do
    local kind = ARGV[i]
    if string.sub(kind, -1) == '?' then
      -- A partial record (a Reports row's project: no estimate, no budget) only fills a gap.
      redis.call('HSETNX', prefix .. 'n:' .. string.sub(kind, 1, -2), ARGV[i + 1], ARGV[i + 2])
    else
      redis.call('HSET', prefix .. 'n:' .. kind, ARGV[i + 1], ARGV[i + 2])
    end
  end
end

local old_status, old_fp, old_day
local meta = redis.call('HGET', KEYS[1], id)
if meta then
  old_status, old_fp, old_day = string.match(meta, '^(%a)|([^|]*)|(.*)$')
end

local skip
if kind == 'delete' then
  if old_status == 'D' then skip = 'duplicate' end
elseif kind == 'create' then
  -- A creation is the first state of any entry: whatever is stored is at least as new.
  if old_status then skip = (old_fp == fp) and 'duplicate' or 'stale' end
elseif old_status == 'D' and kind == 'update' then
  skip = 'deleted-before'
elseif old_status and old_status ~= 'D' and old_fp == fp then
  skip = 'duplicate'
elseif old_status == 'L' and status == 'R' and kind ~= 'restore' then
  -- A stopped entry never runs again in Clockify, so a running state after a stop is late.
  skip = 'stale'
end
if skip then
  write_names()
  return {skip, ''}
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

-- Apply every changed total, each checked as it is made: HINCRBY refuses a value that is not an
-- integer or an int64 overflow, and a total beyond 2^53 is refused here. On a refusal the totals
-- already changed are changed back before anything else is written, so the entry is all or
-- nothing (Redis does not roll back a script that fails part-way). Undoing costs nothing on the
-- normal path, where checking first would cost a read of every total.
local abs, find = math.abs, string.find
local wkeys, wfields, wdeltas, n = {}, {}, {}, 0
local function undo()
  for i = n, 1, -1 do
    -- A field this entry created goes again (a total of zero is never kept).
    if redis.call('HINCRBY', wkeys[i], wfields[i], -wdeltas[i]) == 0 then
      redis.call('HDEL', wkeys[i], wfields[i])
    end
  end
end
for _, key in ipairs(order) do
  for field, delta in pairs(deltas[key]) do
    if delta ~= 0 then
      local total = redis.pcall('HINCRBY', key, field, delta)
      if type(total) == 'table' then
        undo()
        -- Only what is stored can make a total refuse (an overflow, a value or key of another
        -- kind); anything else (NOREPLICAS, READONLY, OOM...) is Redis refusing writes for now,
        -- passed on as the error it is.
        local why = tostring(total.err)
        if not (find(why, 'overflow', 1, true) or find(why, 'not an integer', 1, true)
            or find(why, 'WRONGTYPE', 1, true)) then
          return total
        end
        return {'rejected', 'the total ' .. field .. ' in ' .. key .. ' cannot change by ' ..
          string.format('%.0f', delta) .. ' (' .. tostring(total.err) .. ')'}
      end
      n = n + 1
      wkeys[n], wfields[n], wdeltas[n] = key, field, delta
      if abs(total) > LIMIT then
        undo()
        return {'rejected', 'the total ' .. field .. ' in ' .. key .. ' would become ' ..
          string.format('%.0f', total) .. ', beyond 2^53'}
      end
      -- A total back at zero leaves its hash (an undo brings it back from zero exactly).
      if total == 0 then redis.call('HDEL', key, field) end
    end
  end
end
write_names()

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
