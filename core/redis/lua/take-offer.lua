-- Ends an offer for its rider (accept or decline): compare-and-delete of
-- both locks. Only the current token, presented through the rider's own
-- lock key (the rider comes from the caller's token), succeeds; a late,
-- replaced or foreign token changes nothing.
--
-- KEYS[1]  offer:{city}:rider:<rider>
-- KEYS[2]  offer:{city}:order:<order>
-- ARGV[1]  fencing token
--
-- Returns: status
-- Statuses: "ok" (both locks held this token and are now gone),
--           "offer_expired" (anything else).

if redis.call("GET", KEYS[1]) ~= ARGV[1] or redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return "offer_expired"
end
redis.call("DEL", KEYS[1], KEYS[2])
return "ok"
