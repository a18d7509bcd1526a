-- Starts an idempotent request under a lease, or says what happened to the
-- first one with the same key.
--
-- KEYS[1]  idem:{customer}:<key>   HASH state, hash, owner, status, body
-- ARGV[1]  hash of the request body
-- ARGV[2]  this caller's owner token (unique per attempt)
-- ARGV[3]  lease (ms): the claim lives this long unless its owner renews it
--          (renew-idempotent.lua), so a crashed gateway frees the key soon
--
-- Returns: { status [, stored status, stored body | ms left on the lease] }
-- Statuses: "started" (this caller owns the key now), "mismatch" (same key,
--           other body), "in_flight" (the first request is still running;
--           with the ms its lease has left), "replay" (with the stored
--           response).

local state = redis.call("HGET", KEYS[1], "state")
if not state then
  redis.call("HSET", KEYS[1], "state", "pending", "hash", ARGV[1], "owner", ARGV[2])
  redis.call("PEXPIRE", KEYS[1], ARGV[3])
  return { "started" }
end
if redis.call("HGET", KEYS[1], "hash") ~= ARGV[1] then
  return { "mismatch" }
end
if state == "pending" then
  return { "in_flight", redis.call("PTTL", KEYS[1]) }
end
return { "replay", redis.call("HGET", KEYS[1], "status"), redis.call("HGET", KEYS[1], "body") }
