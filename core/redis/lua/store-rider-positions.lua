-- Stores riders' newest positions, each unless the stored one follows it in
-- the rider's order: the position of record only moves forward, whichever
-- stream or ingest node writes. The rule (core/position/rider-position.ts,
-- followsInOrder): the new position follows the stored one when its seq is
-- higher, or when the stored one was received more than the live-age bound
-- before it (a restarted seq: no stored seq, however high, holds a rider
-- back longer than that).
--
-- One call carries a writer flush's positions whose keys share a slot (on a
-- standalone server: all of them), in the order given: one command instead
-- of one per position. A key may repeat (one rider's pings of the same
-- flush, oldest first); each is judged against what the one before it left.
--
-- KEYS[1..n]  rider:{r}:pos   STRING the last position, a LocationRecord in proto3 JSON
--                             (written by core/position/position-forms.ts: its "seq" and, after
--                             it, "receivedAtMs" are decimal strings, found here by plain search:
--                             a pattern scan of the JSON cost ~40% of this script's CPU)
-- ARGV[1]     the live-age bound (ms)
-- ARGV[2]     seconds a position lives (EX)
-- ARGV[3..]   three values per key, in the order of KEYS: the new position's seq
--             (decimal uint64, no leading zeros), when the ingest received it (ms),
--             the new position (LocationRecord proto3 JSON)
--
-- Returns: an array of n integers, one per key: 1 when stored, 0 when the
-- stored position was kept.
-- Statuses: none. A stored value in another form (written before this
-- script) is replaced.

local liveAgeMs = tonumber(ARGV[1])
local ttl = ARGV[2]
local results = {}
for i = 1, #KEYS do
  local base = 3 * i
  local new, receivedAt = ARGV[base], tonumber(ARGV[base + 1])
  local keep = false
  local stored = redis.call("GET", KEYS[i])
  if stored then
    local seq, at
    local _, seqEnd = string.find(stored, '"seq":"', 1, true)
    if seqEnd then
      seq = string.match(stored, "^%d+", seqEnd + 1)
      local _, atEnd = string.find(stored, '"receivedAtMs":"', seqEnd, true)
      if atEnd then at = tonumber(string.match(stored, "^%d+", atEnd + 1)) end
    end
    if seq and at and receivedAt - at <= liveAgeMs then
      -- uint64 seqs are compared as decimal strings: exact where Lua's doubles are not.
      keep = #new < #seq or (#new == #seq and new <= seq)
    end
  end
  if keep then
    results[i] = 0
  else
    redis.call("SET", KEYS[i], ARGV[base + 2], "EX", ttl)
    results[i] = 1
  end
end
return results
