-- Keeps location records Kafka could not take (the ingest's buffer full, or
-- a shutdown while Kafka is away) in the city's spill stream, oldest first,
-- until a replayer sends them on. The stream is capped: records past the cap
-- are refused, not trimmed, so the caller knows exactly how many it lost.
--
-- KEYS[1]  location-spill:{city}   STREAM (fields rider, at, record)
-- ARGV[1]  the cap (entries)
-- ARGV[2..] three values per record, oldest first: rider id, recorded-at ms,
--          LocationRecord bytes
--
-- Returns: the number of records kept (the first ones; the rest did not fit).
-- Statuses: none.

local FIELDS = 3
local room = tonumber(ARGV[1]) - redis.call("XLEN", KEYS[1])
local kept = 0
for i = 2, #ARGV, FIELDS do
  if kept >= room then
    break
  end
  redis.call("XADD", KEYS[1], "*", "rider", ARGV[i], "at", ARGV[i + 1], "record", ARGV[i + 2])
  kept = kept + 1
end
return kept
