-- Removes outbox entries the relay has seen acknowledged by Kafka, and the
-- stream itself once it is empty (entries appended meanwhile are kept).
--
-- KEYS[1]  outbox:{order}   STREAM
-- ARGV[1..] entry ids to remove
--
-- Returns: entries left in the stream.
-- Statuses: none.

if #ARGV > 0 then
  redis.call("XDEL", KEYS[1], unpack(ARGV))
end
local left = redis.call("XLEN", KEYS[1])
if left == 0 then
  redis.call("DEL", KEYS[1])
end
return left
