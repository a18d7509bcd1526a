-- Counts one request against an identity's fixed window and says whether it
-- is allowed. The window's key expires with the window.
--
-- KEYS[1]  rl:{identity}:<window start ms>   STRING counter
-- ARGV[1]  limit (requests per window)
-- ARGV[2]  window length ms
--
-- Returns: { allowed (1/0), requests counted in this window so far }
-- Statuses: none.

local count = redis.call("INCR", KEYS[1])
if count == 1 then
  redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]))
end
local allowed = 0
if count <= tonumber(ARGV[1]) then
  allowed = 1
end
return { allowed, count }
