-- Ends an idempotent request this caller started: stores its response for
-- replay, or (status "0") releases the key so a retry can run again, as
-- after an upstream 5xx or timeout.
--
-- KEYS[1]  idem:{customer}:<key>
-- ARGV[1]  hash of the request body (must still be this caller's claim)
-- ARGV[2]  HTTP status to store, or "0" to release
-- ARGV[3]  response body
-- ARGV[4]  how long the stored response is replayed (ms)
--
-- Returns: status
-- Statuses: "ok", "lost" (the claim expired or is another request's).

if redis.call("HGET", KEYS[1], "state") ~= "pending" or redis.call("HGET", KEYS[1], "hash") ~= ARGV[1] then
  return "lost"
end
if ARGV[2] == "0" then
  redis.call("DEL", KEYS[1])
  return "ok"
end
redis.call("HSET", KEYS[1], "state", "done", "status", ARGV[2], "body", ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[4])
return "ok"
