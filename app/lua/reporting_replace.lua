-- reporting_replace: store a workspace's new reporting settings only if the settings key still
-- holds the value they were computed from (a compare-and-set), so a refresh never overwrites a
-- value another process stored meanwhile.
--
-- KEYS[1] the workspace's reporting settings (a JSON string)
-- ARGV[1] the value read before ("" when the key was absent)
-- ARGV[2] the new value
-- Returns 1 when stored, 0 when the key holds something else now (read it again and retry).

local held = redis.call('GET', KEYS[1])
if (held or '') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
