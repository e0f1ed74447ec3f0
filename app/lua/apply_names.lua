-- apply_names: keep the names and colours of users, projects, clients and tags current, and
-- append one change event when anything actually changed.
--
-- KEYS[1] changes stream
-- ARGV[1] key prefix "cw:{ws}:" (name hashes are "<prefix>n:<kind>", same hash tag as KEYS[1])
-- ARGV[2] stream MAXLEN (approximate)
-- ARGV[3..] triples: kind, id, JSON of the record (kind "client?": partial, see below)
-- Returns {number of records changed, stream id or ""}.

local prefix = ARGV[1]
local changed = {}
for i = 3, #ARGV, 3 do
  local kind = ARGV[i]
  -- A kind ending in "?" is a partial record (a project event's client name): it only fills
  -- a gap, so it never brings back a client Clockify deleted nor undoes a rename.
  local partial = string.sub(kind, -1) == '?'
  if partial then kind = string.sub(kind, 1, -2) end
  local key = prefix .. 'n:' .. kind
  local held = redis.call('HGET', key, ARGV[i + 1])
  if held ~= ARGV[i + 2] and not (partial and held) then
    redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2])
    changed[#changed + 1] = '{"kind":"' .. kind .. '","record":' .. ARGV[i + 2] .. '}'
  end
end
if #changed == 0 then return {0, ''} end
local event = '{"type":"names","names":[' .. table.concat(changed, ',') .. ']}'
local stream_id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'd', event)
return {#changed, stream_id}
