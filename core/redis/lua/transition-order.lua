-- Compare-and-set on an order's status: moves it to a new status only if
-- its version is the one the caller saw and its status is one the move is
-- legal from; bumps the version, appends the outbox entry and publishes the
-- status event, atomically
-- on the order's slot.
--
-- KEYS[1]  order:{order}   HASH tracking record
-- KEYS[2]  outbox:{order}  STREAM the change's outbox entry (relayed to Kafka order-events)
-- ARGV[1]  expected version
-- ARGV[2]  new status
-- ARGV[3]  "publish" or "spublish" (cluster: track:{order} is on this slot)
-- ARGV[4]  channel track:{order}
-- ARGV[5]  order id
-- ARGV[6]  ms the record lives after this move ("0": no expiry; the caller
--          passes its retention when the move ends the order)
-- ARGV[7..] statuses the move is legal from
--
-- The entry and the event are a TrackingEvent's proto3 JSON:
-- {orderId, status: {status, version, riderId?}} (version a decimal string).
--
-- Returns: { status, version, rider id or "" }
-- Statuses: "ok", "not_found", "stale_version" (version differs),
--           "illegal_transition" (current status not among ARGV[7..]).

local record = redis.call("HMGET", KEYS[1], "status", "version", "riderId")
if not record[1] then
  return { "not_found", 0, "" }
end
if record[2] ~= ARGV[1] then
  return { "stale_version", tonumber(record[2]) or 0, "" }
end
local legal = false
for i = 7, #ARGV do
  if ARGV[i] == record[1] then
    legal = true
  end
end
if not legal then
  return { "illegal_transition", tonumber(record[2]) or 0, "" }
end
redis.call("HSET", KEYS[1], "status", ARGV[2])
local version = redis.call("HINCRBY", KEYS[1], "version", 1)
if ARGV[6] ~= "0" then
  redis.call("PEXPIRE", KEYS[1], ARGV[6])
end
local rider = record[3] or ""
-- The event as the proto3 JSON of TrackingEvent (core/messages/tracking-events.ts).
local status = { status = ARGV[2], version = tostring(version) }
if rider ~= "" then
  status.riderId = rider
end
local payload = cjson.encode({ orderId = ARGV[5], status = status })
redis.call("XADD", KEYS[2], "*", "event", payload)
redis.call(ARGV[3], ARGV[4], payload)
return { "ok", version, rider }
