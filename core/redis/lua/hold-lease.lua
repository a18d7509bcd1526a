-- Takes a lease that is free, or renews one this holder already has: one
-- holder at a time, for `ttl` ms from now. A lease whose holder stopped
-- renewing expires and is free again.
--
-- KEYS[1]  the lease (STRING holder id, with a TTL), e.g. outbox-lease:{p<n>}
-- ARGV[1]  holder id
-- ARGV[2]  ttl (ms)
--
-- Returns: status
-- Statuses: "taken" (was free, now this holder's), "renewed" (already this
--           holder's, TTL reset), "held" (another holder has it; unchanged).

local holder = redis.call("GET", KEYS[1])
if holder == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return "renewed"
end
if holder then
  return "held"
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return "taken"
