-- Starts an idempotent request, or says what happened to the first one
-- with the same key.
--
-- KEYS[1]  idem:{customer}:<key>   HASH state, hash, status, body
-- ARGV[1]  hash of the request body
-- ARGV[2]  how long an in-flight claim lives (ms), so a crashed gateway frees the key
--
-- Returns: { status [, stored status, stored body] }
-- Statuses: "started" (this caller owns the key now), "mismatch" (same key,
--           other body), "in_flight" (the first request is still running),
--           "replay" (with the stored response).

local state = redis.call("HGET", KEYS[1], "state")
if not state then
  redis.call("HSET", KEYS[1], "state", "pending", "hash", ARGV[1])
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return { "started" }
end
if redis.call("HGET", KEYS[1], "hash") ~= ARGV[1] then
  return { "mismatch" }
end
if state == "pending" then
  return { "in_flight" }
end
return { "replay", redis.call("HGET", KEYS[1], "status"), redis.call("HGET", KEYS[1], "body") }
