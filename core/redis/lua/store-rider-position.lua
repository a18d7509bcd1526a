-- Stores a rider's newest position, unless the stored one follows it in the
-- rider's order: the position of record only moves forward, whichever
-- stream or ingest node writes. The rule (core/position/rider-position.ts,
-- followsInOrder): the new position follows the stored one when its seq is
-- higher, or when the stored one was received more than the live-age bound
-- before it (a restarted seq: no stored seq, however high, holds a rider
-- back longer than that).
--
-- KEYS[1]  rider:{r}:pos   STRING the last position, a LocationRecord in proto3 JSON
--                          (written by core/position/position-forms.ts: its "seq" and
--                          "receivedAtMs" are decimal strings, read back here by pattern)
-- ARGV[1]  the new position's seq (decimal uint64, no leading zeros)
-- ARGV[2]  when the ingest received it (ms)
-- ARGV[3]  the live-age bound (ms)
-- ARGV[4]  the new position (LocationRecord proto3 JSON)
-- ARGV[5]  seconds the position lives (EX)
--
-- Returns: 1 when stored, 0 when the stored position was kept.
-- Statuses: none. A stored value in another form (written before this
-- script) is replaced.

local stored = redis.call("GET", KEYS[1])
if stored then
  local seq = string.match(stored, '"seq":"(%d+)"')
  local at = tonumber(string.match(stored, '"receivedAtMs":"(%d+)"'))
  if seq and at and tonumber(ARGV[2]) - at <= tonumber(ARGV[3]) then
    -- uint64 seqs are compared as decimal strings: exact where Lua's doubles are not.
    local new = ARGV[1]
    if #new < #seq or (#new == #seq and new <= seq) then
      return 0
    end
  end
end
redis.call("SET", KEYS[1], ARGV[4], "EX", ARGV[5])
return 1
