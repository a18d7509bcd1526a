-- Keeps an in-flight idempotent request's lease alive while its owner works.
--
-- KEYS[1]  idem:{customer}:<key>
-- ARGV[1]  the owner token given to begin-idempotent.lua
-- ARGV[2]  lease (ms) from now
--
-- Returns: status
-- Statuses: "ok", "lost" (the lease ran out, or the key is another attempt's).

if redis.call("HGET", KEYS[1], "state") ~= "pending" or redis.call("HGET", KEYS[1], "owner") ~= ARGV[1] then
  return "lost"
end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return "ok"
