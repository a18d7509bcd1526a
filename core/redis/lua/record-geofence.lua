-- Records that an order's rider crossed one of its geofences: once per
-- order and fence, only for the assigned rider and only in the status the
-- fence means something in (leaving the pickup when READY, entering the
-- drop-off when PICKED_UP). Appends the geofence event to the outbox and
-- publishes it; with automatic status changes, leaving the pickup also moves
-- the order READY -> PICKED_UP (version bump, status event), atomically on
-- the order's slot.
--
-- KEYS[1]  order:{order}   HASH tracking record (the once-marker is field "fence:<name>")
-- KEYS[2]  outbox:{order}  STREAM relayed to Kafka order-events
-- ARGV[1]  order id
-- ARGV[2]  rider id (from the rider's token)
-- ARGV[3]  fence: "left_pickup" or "entered_dropoff"
-- ARGV[4]  when the ingest saw the crossing (ms)
-- ARGV[5]  "1" = move the status automatically, "0" = event only
-- ARGV[6]  "publish" or "spublish" (cluster: track:{order} is on this slot)
-- ARGV[7]  channel track:{order}
--
-- Events (outbox entries and published alike) are TrackingEvents' proto3 JSON:
-- {orderId, geofence: {fence: "FENCE_LEFT_PICKUP" | "FENCE_ENTERED_DROPOFF", riderId, atMs}}
-- and, with the automatic move, {orderId, status: {status: "PICKED_UP", version, riderId}}.
--
-- Returns: { status, version }
-- Statuses: "recorded", "status_changed" (recorded and moved to PICKED_UP),
--           "not_found", "not_assigned" (another rider, or none),
--           "not_applicable" (the order is not in the fence's status),
--           "already_recorded".

local NEEDS = { left_pickup = "READY", entered_dropoff = "PICKED_UP" }
-- GeofenceEvent.Fence value names (core/messages/tracking-events.ts).
local FENCE_NAMES = { left_pickup = "FENCE_LEFT_PICKUP", entered_dropoff = "FENCE_ENTERED_DROPOFF" }

local record = redis.call("HMGET", KEYS[1], "status", "version", "riderId")
if not record[1] then
  return { "not_found", 0 }
end
local version = tonumber(record[2]) or 0
if record[3] ~= ARGV[2] then
  return { "not_assigned", version }
end
if NEEDS[ARGV[3]] ~= record[1] then
  return { "not_applicable", version }
end
if redis.call("HSETNX", KEYS[1], "fence:" .. ARGV[3], ARGV[4]) == 0 then
  return { "already_recorded", version }
end

local function emit(event)
  local payload = cjson.encode(event)
  redis.call("XADD", KEYS[2], "*", "event", payload)
  redis.call(ARGV[6], ARGV[7], payload)
end

emit({
  orderId = ARGV[1],
  geofence = { fence = FENCE_NAMES[ARGV[3]], riderId = ARGV[2], atMs = ARGV[4] },
})
if ARGV[5] == "1" and ARGV[3] == "left_pickup" then
  redis.call("HSET", KEYS[1], "status", "PICKED_UP")
  version = redis.call("HINCRBY", KEYS[1], "version", 1)
  emit({
    orderId = ARGV[1],
    status = { status = "PICKED_UP", version = tostring(version), riderId = ARGV[2] },
  })
  return { "status_changed", version }
end
return { "recorded", version }
