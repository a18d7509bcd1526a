-- A rider's accept retried after its offer was spent: is the order still
-- this rider's by this offer (the fencing token assign-rider.lua wrote)
-- and not ended? Then its status and version are the retry's answer.
--
-- KEYS[1]  order:{order}   HASH tracking record
-- ARGV[1]  rider id
-- ARGV[2]  fencing token of the accepted offer
--
-- When it holds, the token is written again (the same value): the write is
-- replicated, so a WAIT after this script on the same connection counts
-- only replicas that have every earlier write on the shard, the assignment
-- among them. A read alone would let WAIT count replicas against this
-- connection's own last write, which may predate the assignment.
--
-- Returns: { status, order status, version }
-- Statuses: "ok" (ASSIGNED, READY or PICKED_UP for this rider by this token),
--           "offer_expired" (anything else: another rider or token, ended, gone).

local record = redis.call("HMGET", KEYS[1], "status", "riderId", "fencingToken", "version")
local status = record[1]
local held = status == "ASSIGNED" or status == "READY" or status == "PICKED_UP"
if not held or record[2] ~= ARGV[1] or record[3] ~= ARGV[2] then
  return { "offer_expired", "", 0 }
end
redis.call("HSET", KEYS[1], "fencingToken", ARGV[2])
return { "ok", status, tonumber(record[4]) or 0 }
