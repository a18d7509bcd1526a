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
-- ARGV[2]  the pings, oldest first, packed one after another (big-endian):
--          u32 rider id length, rider id, u8 current (1 = the rider's newest
--          position, 0 = backlog history only), f64 lng, f64 lat, f64 seen ms,
--          u32 LocationRecord length, LocationRecord bytes. One argument for
--          the whole call: the client builds one buffer instead of six
--          arguments per ping (core/redis/scripts.ts queueRecordPositions)
--
-- Returns: the number of pings recorded.
-- Statuses: error "ERR malformed pings argument: ..." (a ping cut short or
--          bytes left over, a current ping's coordinates outside GEOADD's range:
--          callers validate |lat| <= 85.05112878): nothing is written. The
--          whole argument is read and checked before the first write, since
--          Redis keeps a script's writes made before it fails, and a caller
--          that resends after an error must not log pings twice.

-- unpack() is limited by Lua's C stack: send GEOADD/ZADD in chunks.
local CHUNK = 2400
local PING = ">Ic0BdddIc0"

local maxLen = tonumber(ARGV[1])
local packed = ARGV[2]
local geo, seen, logged = {}, {}, {}
local count = 0

-- Every ping read and checked first. struct.unpack raises on a ping that runs
-- past the argument's end (bytes left over are a ping cut short), so the loop
-- ends exactly at the end or not at all.
local function readAll()
  local at = 1
  while at <= #packed do
    local rider, current, lng, lat, seenMs, record
    rider, current, lng, lat, seenMs, record, at = struct.unpack(PING, packed, at)
    count = count + 1
    if current == 1 then
      if not (lng >= -180 and lng <= 180 and lat >= -85.05112878 and lat <= 85.05112878) then
        error("ping " .. count .. " has coordinates outside GEOADD's range")
      end
      geo[#geo + 1] = lng
      geo[#geo + 1] = lat
      geo[#geo + 1] = rider
      seen[#seen + 1] = seenMs
      seen[#seen + 1] = rider
    end
    if maxLen > 0 then
      logged[#logged + 1] = rider
      logged[#logged + 1] = record
    end
  end
end
local ok, reason = pcall(readAll)
if not ok then
  return redis.error_reply("ERR malformed pings argument: " .. tostring(reason))
end

for i = 1, #logged, 2 do
  redis.call("XADD", KEYS[3], "*", "rider", logged[i], "record", logged[i + 1])
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
return count
