-- Records one flush's pings of one city: their place in the city's geo set,
-- their last-seen time, and (when the location log is this Redis stream)
-- one log entry each, in the order given. One call per city per flush keeps
-- the ingest's client-side cost per ping low (one command instead of three);
-- the stream is trimmed once per call rather than by every XADD (a fifth
-- less Redis CPU per ping).
--
-- KEYS[1]  geo:{city}:riders    GEO set
-- KEYS[2]  geo:{city}:seen      ZSET rider -> last-seen ms
-- KEYS[3]  locations:{city}     STREAM, capped (touched only when ARGV[1] > 0)
-- ARGV[1]  stream MAXLEN (approximate: XTRIM MAXLEN ~ after this call's entries, so
--          whole stream nodes go); 0 = the log lives elsewhere (Kafka)
-- ARGV[2..] six values per ping, oldest first:
--          rider id, current ("1" = the rider's newest position, "0" = backlog
--          history only), lng, lat, seen ms, LocationRecord bytes
--
-- Returns: the number of pings recorded.
-- Statuses: none; callers validate coordinates (|lat| <= 85.05112878).

local FIELDS = 6
-- unpack() is limited by Lua's C stack: send GEOADD/ZADD in chunks.
local CHUNK = 2400

local maxLen = tonumber(ARGV[1])
local geo, seen = {}, {}
for i = 2, #ARGV, FIELDS do
  local rider = ARGV[i]
  if ARGV[i + 1] == "1" then
    geo[#geo + 1] = ARGV[i + 2]
    geo[#geo + 1] = ARGV[i + 3]
    geo[#geo + 1] = rider
    seen[#seen + 1] = ARGV[i + 4]
    seen[#seen + 1] = rider
  end
  if maxLen > 0 then
    redis.call("XADD", KEYS[3], "*", "rider", rider, "record", ARGV[i + 5])
  end
end

local function inChunks(command, key, values, width)
  local step = CHUNK - (CHUNK % width)
  for from = 1, #values, step do
    local to = math.min(from + step - 1, #values)
    redis.call(command, key, unpack(values, from, to))
  end
end
if maxLen > 0 then redis.call("XTRIM", KEYS[3], "MAXLEN", "~", maxLen) end
inChunks("GEOADD", KEYS[1], geo, 3)
inChunks("ZADD", KEYS[2], seen, 2)
return (#ARGV - 1) / FIELDS
