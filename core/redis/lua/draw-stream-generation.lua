-- Draws a rider's StreamPings generation (the next value of the rider's
-- counter, recording which stream holds it and when that stream opened), or,
-- for a stream rechecked after a gap in its inbox subscription, says whether
-- it still holds the newest generation. The stream holding the highest
-- generation is the rider's live one; every other is superseded.
--
-- A rechecked stream keeps its generation only while it is the holder: the
-- counter is its generation and the holder is its id (two streams can draw
-- the same number when Redis lost the counter in between). It is superseded
-- when the counter rose past its generation (a stream drew after it). Else
-- (it holds none, its draw failed: 0; or the counter fell below or tied with
-- it under another holder) the stream opened last wins: it is superseded if
-- the holder opened after it, and draws anew if not.
--
-- "Opened" is on Redis's clock: the caller sends how long ago its stream
-- opened (a duration on its node's clock) and the script subtracts it from
-- TIME, so no two nodes' clocks are ever compared. (TIME before a write is
-- allowed: scripts replicate by their effects since Redis 5, always since 7.)
--
-- KEYS[1]  rider:{r}:stream          STRING counter: the newest stream's generation
-- KEYS[2]  rider:{r}:stream-opened   STRING: when its holder opened (ms, Redis's clock)
-- KEYS[3]  rider:{r}:stream-holder   STRING: the id of the stream holding it
-- ARGV[1]  the stream's id (unique per stream)
-- ARGV[2]  how long ago the stream opened (ms)
-- ARGV[3]  ttl of the keys (s)
-- ARGV[4]  the generation the stream holds: "" for a new stream (always
--          draws), "0" for one whose draw failed, else the one it drew
--
-- A counter drawn by a node that does not record the holder (an older
-- version, during a rolling deploy) leaves the holder unknown after Redis
-- lost it: a stream whose generation equals the counter then keeps it, as
-- before the holder was recorded. (A stale holder is harmless: that node's
-- INCR moved the counter past the generation its stream holds.)
--
-- Returns: { status, generation }
-- Statuses: "drawn" (generation: the stream's new one),
--           "kept" (the stream holds the newest generation, unchanged),
--           "superseded" (a newer stream holds generation).

local time = redis.call("TIME")
local opened = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) - tonumber(ARGV[2])
if ARGV[4] ~= "" then
  local held = tonumber(ARGV[4])
  local current = tonumber(redis.call("GET", KEYS[1]) or "0")
  local holder = redis.call("GET", KEYS[3])
  if held > 0 and current == held and (holder == ARGV[1] or not holder) then
    return { "kept", held }
  end
  if held > 0 and current > held then
    return { "superseded", current }
  end
  if current > 0 and tonumber(redis.call("GET", KEYS[2]) or "0") > opened then
    return { "superseded", current }
  end
end
local generation = redis.call("INCR", KEYS[1])
redis.call("EXPIRE", KEYS[1], ARGV[3])
redis.call("SET", KEYS[2], opened, "EX", ARGV[3])
redis.call("SET", KEYS[3], ARGV[1], "EX", ARGV[3])
return { "drawn", generation }
