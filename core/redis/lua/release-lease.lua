-- Gives a lease back at once (compare-and-delete): only its holder can, so
-- a late release never frees a lease that expired and was taken since.
--
-- KEYS[1]  the lease (STRING holder id), e.g. outbox-lease:{p<n>}
-- ARGV[1]  holder id
--
-- Returns: status
-- Statuses: "released", "not_held" (expired, or another holder's).

if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return "not_held"
end
redis.call("DEL", KEYS[1])
return "released"
