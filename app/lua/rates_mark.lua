-- rates_mark: note that Clockify re-applied a billable or cost rate to past entries from a day
-- on, keeping the earliest day of every mark not yet re-read, and count the mark.
--
-- KEYS[1] the workspace's rates-dirty hash (keys.rates_dirty): since, at, marks
-- ARGV[1] the first day to re-read, YYYY-MM-DD (days compare as strings)
-- ARGV[2] now, ISO instant
-- ARGV[3] the day a stored `since` of "" stands for (the current month's, or week's, first)
-- Returns {the day the marker now starts from, the marks counted so far}.
-- Every mark bumps `marks`, so a poller that read the marker before it never clears it: the
-- entries it read may predate the new rate.

local since = ARGV[1]
local old = redis.call('HGET', KEYS[1], 'since')
if old then
  if old == '' then old = ARGV[3] end
  if old < since then since = old end
end
redis.call('HSET', KEYS[1], 'since', since, 'at', ARGV[2])
local marks = redis.call('HINCRBY', KEYS[1], 'marks', 1)
return {since, marks}
