-- Deletes spilled location records a replayer has had acknowledged by Kafka,
-- fenced by the replay lease: only while `holder` still holds it, so a
-- replayer that paused past its lease (and was replaced) deletes nothing the
-- new holder is working on. Its late produce is then a duplicate, which the
-- log's consumers fold by rider and seq.
--
-- KEYS[1]  location-spill-lease:{city}   STRING holder id (hold-lease.lua)
-- KEYS[2]  location-spill:{city}         STREAM
-- ARGV[1]  holder id
-- ARGV[2..] stream entry ids
--
-- Returns: the number of entries deleted, or -1 when `holder` no longer holds the lease.
-- Statuses: none.

if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return -1
end
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids == 0 then
  return 0
end
return redis.call("XDEL", KEYS[2], unpack(ids))
