-- rebuild_switch: make the generation built by a rebuild the one answers read, in one step.
--
-- KEYS[1] projection hash
-- KEYS[2] changes stream
-- KEYS[3] meta hash (its copy of the generations, field `gens`, goes: apply_entry.lua)
-- ARGV[1] N, the generation that was built
-- ARGV[2] stream MAXLEN (approximate)
-- Returns the generation answers read before (its keys are now garbage), or false when N is not
-- being built (another process switched first, or a newer rebuild replaced it).

if redis.call('HGET', KEYS[1], 'next') ~= ARGV[1] then return false end
local old = redis.call('HGET', KEYS[1], 'gen')
local basis = redis.call('HGET', KEYS[1], 'nextBasis')
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'basis', basis, 'garbage', old)
redis.call('HDEL', KEYS[1], 'next', 'nextBasis', 'done', 'total')
redis.call('HDEL', KEYS[3], 'gens')
-- Every wall reloads its snapshot: the totals it holds are of the old generation.
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'd',
  '{"type":"rebuilt","gen":"' .. ARGV[1] .. '","basis":' .. basis .. '}')
return old
