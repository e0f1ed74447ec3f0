-- rebuild_batch: add stored entries to a generation of totals being built (app/rebuild.py).
--
-- KEYS[1] meta hash (id -> "<status>|<fingerprint>|<day>")
-- KEYS[2] projection hash (the generation being built is its `next`)
-- ARGV[1] generation prefix "cw:{ws}:g<N>:" (same hash tag as KEYS)
-- ARGV[2] N, the generation being built
-- ARGV[3..] pairs: entry id, "<fingerprint>|<start epoch>|<contribution JSON {day, f, n}>"
-- An entry is added only when the generation does not hold it yet (a live apply during the
-- rebuild writes it there itself) and its stored state is still the one the contribution was
-- computed from (same fingerprint, not deleted). Returns {added, skipped}, or {-1, 0} when N is
-- no longer being built.

local gp, gen = ARGV[1], ARGV[2]
if redis.call('HGET', KEYS[2], 'next') ~= gen then return {-1, 0} end
local added, skipped = 0, 0
local days = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local fp, _, contrib = string.match(ARGV[i + 1], '^([^|]*)|([^|]*)|(.*)$')
  local meta = redis.call('HGET', KEYS[1], id)
  local status, stored_fp
  if meta then status, stored_fp = string.match(meta, '^(%a)|([^|]*)|') end
  if status and status ~= 'D' and stored_fp == fp
      and redis.call('HEXISTS', gp .. 'contrib', id) == 0 then
    local c = cjson.decode(contrib)
    for j = 1, c.n or #c.f do
      redis.call('HINCRBY', gp .. 'c:' .. c.day, c.f[j][1], c.f[j][2])
    end
    if c.f[1] then days[c.day] = true end
    redis.call('APPEND', gp .. 'il:' .. c.day, id .. ' ')
    redis.call('HSET', gp .. 'contrib', id, contrib)
    added = added + 1
  else
    skipped = skipped + 1
  end
end
-- A day holding totals has a version: readers learn from it which days to read.
for day in pairs(days) do redis.call('HINCRBY', gp .. 'ver', day, 1) end
return {added, skipped}
