-- Draws a rider's StreamPings generation (the next value of the rider's
-- counter, recording when the drawing stream opened), or, for a stream
-- rechecked after a gap in its inbox subscription, says whether it still
-- holds the newest generation. The stream holding the highest generation is
-- the rider's live one; every other is superseded.
--
-- A rechecked stream draws anew when it holds no generation (its draw
-- failed: 0) or the counter fell below its own (the keys expired, or Redis
-- lost them), unless the stream that holds the counter opened after it:
-- then that one is newer and this one is superseded.
--
-- KEYS[1]  rider:{r}:stream          STRING counter: the newest stream's generation
-- KEYS[2]  rider:{r}:stream-opened   STRING: when the stream holding it opened (ms)
-- ARGV[1]  when the drawing stream opened (ms)
-- ARGV[2]  ttl of both keys (s)
-- ARGV[3]  the generation the stream holds: "" for a new stream (always
--          draws), "0" for one whose draw failed, else the one it drew
--
-- Returns: { status, generation }
-- Statuses: "drawn" (generation: the stream's new one),
--           "kept" (the stream holds the newest generation, unchanged),
--           "superseded" (a newer stream holds generation).

if ARGV[3] ~= "" then
  local held = tonumber(ARGV[3])
  local current = tonumber(redis.call("GET", KEYS[1]) or "0")
  if held > 0 and current == held then
    return { "kept", held }
  end
  if held > 0 and current > held then
    return { "superseded", current }
  end
  local opened = tonumber(redis.call("GET", KEYS[2]) or "0")
  if opened > tonumber(ARGV[1]) then
    return { "superseded", current }
  end
end
local generation = redis.call("INCR", KEYS[1])
redis.call("EXPIRE", KEYS[1], ARGV[2])
redis.call("SET", KEYS[2], ARGV[1], "EX", ARGV[2])
return { "drawn", generation }
