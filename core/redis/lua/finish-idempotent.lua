-- Ends an idempotent request this caller started: stores its response for
-- replay, or (status "0") releases the key so a retry can run again, as
-- after an upstream 5xx or timeout.
--
-- KEYS[1]  idem:{customer}:<key>
-- ARGV[1]  the owner token given to begin-idempotent.lua (must still hold the lease)
-- ARGV[2]  HTTP status to store, or "0" to release
-- ARGV[3]  response body
-- ARGV[4]  how long the stored response is replayed (ms)
--
-- Returns: status
-- Statuses: "ok", "lost" (the lease ran out, or the key is another attempt's).

if redis.call("HGET", KEYS[1], "state") ~= "pending" or redis.call("HGET", KEYS[1], "owner") ~= ARGV[1] then
  return "lost"
end
if ARGV[2] == "0" then
  redis.call("DEL", KEYS[1])
  return "ok"
end
redis.call("HSET", KEYS[1], "state", "done", "status", ARGV[2], "body", ARGV[3])
redis.call("HDEL", KEYS[1], "owner")
redis.call("PEXPIRE", KEYS[1], ARGV[4])
return "ok"
