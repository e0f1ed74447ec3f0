-- rebuild_settle: after a switch, move entries' contributions to the generation answers read
-- from that generation's hash (where the rebuild wrote them) into their meta records, where
-- apply_entry.lua keeps them; until then apply_entry.lua and the readers find them in the hash.
--
-- KEYS[1] meta hash (apply_entry.lua: "<status>|<fingerprint>|<day>|<gen>|<contribution>")
-- KEYS[2] projection hash
-- ARGV[1] generation prefix "cw:{ws}:g<N>:" (same hash tag as KEYS)
-- ARGV[2] N, the generation whose contributions move
-- ARGV[3..] entry ids
-- Returns the number of contributions moved, or -1 when N is not the generation answers read.

local hash, gen = ARGV[1] .. 'contrib', ARGV[2]
if redis.call('HGET', KEYS[2], 'gen') ~= gen then return -1 end
local moved = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local contrib = redis.call('HGET', hash, id)
  if contrib then
    local meta = redis.call('HGET', KEYS[1], id)
    local status, fp, held_gen
    if meta then
      status, fp, held_gen = string.match(meta, '^(%a)|([^|]*)|[^|]*|?([^|]*)')
    end
    -- A record already written for N holds the newer contribution (an apply moved it); a
    -- deleted entry holds none.
    if status and status ~= 'D' and held_gen ~= gen then
      local day = string.match(contrib, '"day":"([^"]*)"') or ''
      redis.call('HSET', KEYS[1], id, status .. '|' .. fp .. '|' .. day .. '|' .. gen .. '|' ..
        contrib)
      moved = moved + 1
    end
    redis.call('HDEL', hash, id)
  end
end
return moved
