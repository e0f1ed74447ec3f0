-- rates_advance: after the poller re-read the entries of the rates-dirty marker from `since` up
-- to a day, move `since` past that day, or delete the marker when all is re-read; but only if
-- no mark came since the poller read it (else the marker stays whole for its next run).
--
-- KEYS[1] the workspace's rates-dirty hash (keys.rates_dirty): since, at, marks
-- ARGV[1] the `marks` count the poller read
-- ARGV[2] the next day to re-read, YYYY-MM-DD, or "" when everything up to now is re-read
-- Returns 1 when the marker was moved on or deleted, 0 when it was left as it is.

local marks = redis.call('HGET', KEYS[1], 'marks') or '0'
if marks ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'since', ARGV[2])
end
return 1
