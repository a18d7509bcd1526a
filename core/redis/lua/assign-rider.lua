-- Assigns the rider of an accepted offer to the order: CONFIRMED -> ASSIGNED,
-- version + 1, the outbox entry and the status event, atomically on
-- the order's slot.
--
-- KEYS[1]  order:{order}   HASH tracking record
-- KEYS[2]  outbox:{order}  STREAM the change's outbox entry (relayed to Kafka order-events)
-- ARGV[1]  rider id
-- ARGV[2]  fencing token of the accepted offer
-- ARGV[3]  "publish" or "spublish" (cluster: the channel track:{order} is on this slot)
-- ARGV[4]  channel name track:{order}
-- ARGV[5]  order id
--
-- The entry and the event are a TrackingEvent's proto3 JSON: {orderId, status: {status, version, riderId}}.
--
-- Returns: { status, version }
-- Statuses: "ok", "not_found" (no record), "illegal_transition" (not CONFIRMED).

local status = redis.call("HGET", KEYS[1], "status")
if not status then
  return { "not_found", 0 }
end
if status ~= "CONFIRMED" then
  return { "illegal_transition", 0 }
end
redis.call("HSET", KEYS[1], "status", "ASSIGNED", "riderId", ARGV[1], "fencingToken", ARGV[2])
local version = redis.call("HINCRBY", KEYS[1], "version", 1)
-- The event as the proto3 JSON of TrackingEvent (core/messages/tracking-events.ts).
local payload = cjson.encode({
  orderId = ARGV[5],
  status = { status = "ASSIGNED", version = tostring(version), riderId = ARGV[1] },
})
redis.call("XADD", KEYS[2], "*", "event", payload)
redis.call(ARGV[3], ARGV[4], payload)
return { "ok", version }
