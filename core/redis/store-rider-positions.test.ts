import { describe, expect, test } from "bun:test";
import { SOME_POSITION } from "../../test/support/positions";
import { useRedisConnection } from "../../test/support/redis-connection";
import { uniqueId } from "../../test/support/tokens";
import { encodeStoredPosition, parseStoredPosition } from "../position/position-forms";
import type { RiderPosition } from "../position/rider-position";
import { keys } from "./keys";
import { queueStoreRiderPositions } from "./scripts";

const fixture = useRedisConnection("store-rider-positions-test");
const LIVE_AGE_MS = 120_000;

/** Runs store-rider-positions.lua for positions in one call; 1 for each stored, 0 for each kept. */
async function storeAll(positions: RiderPosition[]): Promise<number[]> {
  const pipeline = fixture.connection.client.pipeline();
  const entries = positions.map((position) => ({ position, json: encodeStoredPosition(position) }));
  queueStoreRiderPositions(pipeline, entries, LIVE_AGE_MS, 60);
  const [[error, stored]] = (await pipeline.exec()) as [[Error | null, number[]]];
  if (error) throw error;
  return stored;
}

/** Runs store-rider-positions.lua for one position; true when it was stored. */
const store = async (position: RiderPosition) => (await storeAll([position]))[0] === 1;

const storedSeq = async (riderId: string) =>
  parseStoredPosition(await fixture.connection.client.get(keys.riderPosition(riderId)))?.seq;

describe("store-rider-positions.lua", () => {
  test("the stored position only moves forward in seq, exactly past 2^53", async () => {
    const riderId = uniqueId("rider");
    const at = (seq: bigint, receivedAtMs = 1_000_000) =>
      ({ ...SOME_POSITION, riderId, seq, receivedAtMs }) satisfies RiderPosition;
    expect(await store(at(100n))).toBe(true);
    expect(await store(at(50n))).toBe(false);
    expect(await store(at(100n))).toBe(false);
    expect(await storedSeq(riderId)).toBe(100n);
    // Seqs that differ only past a double's precision.
    expect(await store(at(2n ** 63n + 5n))).toBe(true);
    expect(await store(at(2n ** 63n + 4n))).toBe(false);
    expect(await store(at(2n ** 63n + 6n))).toBe(true);
    // Shorter decimal strings are smaller numbers, whatever their digits.
    expect(await store(at(999_999n))).toBe(false);
    expect(await storedSeq(riderId)).toBe(2n ** 63n + 6n);
  });

  test("a seq of 2^64-1 holds the rider back for the live-age bound, not longer", async () => {
    const riderId = uniqueId("rider");
    const t0 = 5_000_000;
    const at = (seq: bigint, receivedAtMs: number) =>
      ({ ...SOME_POSITION, riderId, seq, receivedAtMs }) satisfies RiderPosition;
    expect(await store(at(2n ** 64n - 1n, t0))).toBe(true);
    expect(await store(at(1n, t0 + LIVE_AGE_MS))).toBe(false);
    expect(await store(at(1n, t0 + LIVE_AGE_MS + 1))).toBe(true);
    expect(await storedSeq(riderId)).toBe(1n);
    expect(await store(at(2n, t0 + LIVE_AGE_MS + 2))).toBe(true);
  });

  test("a value in another form (written before this script) is replaced, and the TTL is set", async () => {
    const riderId = uniqueId("rider");
    const key = keys.riderPosition(riderId);
    await fixture.connection.client.set(key, JSON.stringify({ seq: "999", receivedAt: 1 }));
    expect(await store({ ...SOME_POSITION, riderId, seq: 1n })).toBe(true);
    expect(await storedSeq(riderId)).toBe(1n);
    expect(await fixture.connection.client.ttl(key)).toBeGreaterThan(0);
  });

  test("one call: each position judged in the order given against what the one before left, one answer each", async () => {
    const [a, b] = [uniqueId("rider"), uniqueId("rider")];
    const at = (riderId: string, seq: bigint) =>
      ({ ...SOME_POSITION, riderId, seq, receivedAtMs: 1_000_000 }) satisfies RiderPosition;
    expect(await store(at(b, 7n))).toBe(true);
    // a: 5 then 3 (kept 5) then 6; b: 6 (kept 7) then 8.
    const replies = await storeAll([at(a, 5n), at(b, 6n), at(a, 3n), at(a, 6n), at(b, 8n)]);
    expect(replies).toEqual([1, 0, 0, 1, 1]);
    expect([await storedSeq(a), await storedSeq(b)]).toEqual([6n, 8n]);
  });
});
