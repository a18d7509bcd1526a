-- Ends an offer for its rider (accept or decline): compare-and-delete of
-- both locks. Only the current token, presented through the rider's own
-- lock key (the rider comes from the caller's token), succeeds; a late,
-- replaced or foreign token changes nothing.
--
-- An accept that takes the locks also sets the accepting marker, for as
-- long as its assignment (on the order's slot, another script) may take:
-- an accept of the same token by the same rider that comes meanwhile, its
-- retry, finds the locks gone and the marker, and is told the first is
-- still under way rather than that the offer is lost.
--
-- KEYS[1]  offer:{city}:rider:<rider>
-- KEYS[2]  offer:{city}:order:<order>
-- KEYS[3]  offer:{city}:accepting:<order>  STRING "<rider> <token>", PX
-- ARGV[1]  fencing token
-- ARGV[2]  the marker's value: "<rider> <token>"
-- ARGV[3]  the marker's TTL (ms) for an accept; 0 for a decline (no marker, none looked at)
--
-- Returns: status
-- Statuses: "ok" (both locks held this token and are now gone),
--           "accepting" (an accept: the locks are gone, and the marker is this
--                        rider's by this token: its first accept is under way),
--           "offer_expired" (anything else).

local accept = ARGV[3] ~= "0"
if redis.call("GET", KEYS[1]) ~= ARGV[1] or redis.call("GET", KEYS[2]) ~= ARGV[1] then
  if accept and redis.call("GET", KEYS[3]) == ARGV[2] then
    return "accepting"
  end
  return "offer_expired"
end
redis.call("DEL", KEYS[1], KEYS[2])
if accept then
  redis.call("SET", KEYS[3], ARGV[2], "PX", ARGV[3])
end
return "ok"
