-- Writes an order's tracking record once: a retried create (the order
-- service replays the same order for the same Idempotency-Key) must never
-- reset an order that has moved on since.
--
-- KEYS[1]  order:{o}   HASH tracking record
-- ARGV     field, value, field, value, ... (core/redis/order-record.ts)
--
-- Returns: status
-- Statuses: "created", "exists" (left as it was).

if redis.call("EXISTS", KEYS[1]) == 1 then
  return "exists"
end
redis.call("HSET", KEYS[1], unpack(ARGV))
return "created"
