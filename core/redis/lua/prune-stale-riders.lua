-- Removes riders not seen since a cutoff from a city's geo set, so that
-- GEOSEARCH cost stays proportional to the riders actually on the road.
--
-- KEYS[1]  geo:{city}:riders   GEO set
-- KEYS[2]  geo:{city}:seen     ZSET rider -> last-seen ms
-- ARGV[1]  cutoff ms (riders with last-seen <= cutoff are pruned)
-- ARGV[2]  at most this many riders per call (keeps the script short)
--
-- Returns: the number of riders pruned.
-- Statuses: none; an empty city prunes 0.

local stale = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
if #stale == 0 then
  return 0
end
redis.call("ZREM", KEYS[2], unpack(stale))
redis.call("ZREM", KEYS[1], unpack(stale))
return #stale
