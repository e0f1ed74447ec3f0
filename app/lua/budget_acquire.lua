-- budget_acquire: take one slot of a rolling-window request budget, or refuse, atomically.
--
-- KEYS[1] sorted set of granted requests (member: unique id, score: grant time, epoch seconds)
-- ARGV[1] now, epoch seconds ("" to use the Redis server clock, shared by every process)
-- ARGV[2] window length in seconds (3600)
-- ARGV[3] limit: most requests granted in any window
-- ARGV[4] unique member id for this request
-- Returns {granted (1|0), requests in the window after this call}.
-- Entries with score <= now - window have left the window and are removed first.

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local window, limit = tonumber(ARGV[2]), tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  return {0, count}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return {1, count + 1}
