import { expect, test } from "bun:test";
import { parseStoredPosition } from "../../core/position/position-forms";
import { keys } from "../../core/redis/keys";
import { useIngestOnRedis } from "../../test/support/ingest";
import { testToken, tokenExpMs, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import type { Fix } from "./fix-source";
import { RiderClient } from "./rider-client";
import type { RiderClientEvents, RiderClientOptions } from "./rider-client-api";
import { MemorySeqStore } from "./seq-store";

const fixture = useIngestOnRedis({ PING_INTERVAL_PARKED_MS: "1000" });
const PARKED = { lat: 51.5, lng: -0.12, accuracyM: 5, speedMps: 0, headingDeg: 0 };

/** One of the rider's devices, parked at the same spot (the interval is 1 s). */
async function device(riderId: string, token?: string) {
  const seen = {
    acks: 0,
    retries: 0,
    refreshed: 0,
    stopped: [] as RiderClientEvents["stopped"][],
  };
  const client = new RiderClient({
    ingest: fixture.ingest.grpc,
    token: token ?? (await testToken(riderId, "rider", "london")),
    refreshToken: () => {
      seen.refreshed += 1;
      return testToken(riderId, "rider", "london");
    },
    seqStore: new MemorySeqStore(),
    locate: () => ({ lat: 51.5, lng: -0.12, accuracyM: 5, speedMps: 0, headingDeg: 0 }),
    firstIntervalMs: 200,
    backoff: { firstMs: 50, maxMs: 100 },
  });
  client.on("ack", () => {
    seen.acks += 1;
  });
  client.on("retrying", () => {
    seen.retries += 1;
  });
  client.on("stopped", (stopped) => seen.stopped.push(stopped));
  const run = client.start();
  return { client, seen, run };
}

/** A rider's client on the test ingest, its missed fixes and acks counted. */
async function locatingClient(
  options: Omit<RiderClientOptions, "ingest" | "token" | "seqStore">,
  riderId = uniqueId("rider"),
) {
  const client = new RiderClient({
    ingest: fixture.ingest.grpc,
    token: await testToken(riderId, "rider", "london"),
    seqStore: new MemorySeqStore(),
    ...options,
  });
  const seen = { noFix: [] as RiderClientEvents["noFix"][], acks: 0 };
  client.on("noFix", (event) => seen.noFix.push(event));
  client.on("ack", () => {
    seen.acks += 1;
  });
  return { client, seen };
}

test("a second device of the rider supersedes the first, which stops for good: no reconnect war", async () => {
  const riderId = uniqueId("rider");
  const first = await device(riderId);
  await waitUntil(() => first.seen.acks >= 1, 10_000, "the first device's ack");
  const second = await device(riderId);
  await first.run;
  expect(first.seen.stopped).toEqual([{ reason: "superseded", error: expect.anything() }]);
  expect([first.client.state, first.seen.retries]).toEqual(["stopped", 0]);
  // The second keeps the stream: acked at its interval, never superseded back.
  const acked = second.seen.acks;
  await waitUntil(() => second.seen.acks >= acked + 2, 10_000, "the second device's acks");
  expect([second.client.state, second.seen.stopped, second.seen.retries]).toEqual([
    "streaming",
    [],
    0,
  ]);
  await second.client.close();
});

test("an expired token: refreshToken, then the stream at once (no backoff)", async () => {
  const riderId = uniqueId("rider");
  const token = await testToken(riderId, "rider", "london", 1);
  const expMs = tokenExpMs(token);
  await waitUntil(() => Date.now() > expMs, 5_000, "token expiry");
  const { client, seen } = await device(riderId, token);
  await waitUntil(() => seen.acks >= 1, 10_000, "an ack");
  expect([seen.refreshed, seen.retries, seen.stopped]).toEqual([1, 1, []]);
  await client.close();
});

test("no GPS fix (locate throws or has none): that interval sends nothing, the stream stays open", async () => {
  let calls = 0;
  let retries = 0;
  const { client, seen } = await locatingClient({
    // Fix, GPS error, no fix yet, fix, ...
    locate: () => {
      calls += 1;
      if (calls % 3 === 2) throw new Error("location unavailable");
      if (calls % 3 === 0) return undefined;
      return { lat: 51.5, lng: -0.12, accuracyM: 5, speedMps: 0, headingDeg: 0 };
    },
    firstIntervalMs: 100,
    backoff: { firstMs: 50, maxMs: 100 },
  });
  client.on("retrying", () => {
    retries += 1;
  });
  void client.start();
  await waitUntil(() => seen.acks >= 2, 10_000, "acks around the missing fixes");
  await client.close();
  expect(retries).toBe(0);
  expect(seen.noFix.slice(0, 2)).toEqual([{ error: expect.any(Error) }, {}]);
  // One seq per fix sent, none burnt on the intervals without one.
  expect(client.seq).toBeGreaterThan(0n);
});

test("an asynchronous locate (as the platforms' location APIs are) is awaited: its fix is what goes up; a rejection is a missed fix", async () => {
  const riderId = uniqueId("rider");
  let calls = 0;
  const noFix: RiderClientEvents["noFix"][] = [];
  let acks = 0;
  const client = new RiderClient({
    ingest: fixture.ingest.grpc,
    token: await testToken(riderId, "rider", "london"),
    seqStore: new MemorySeqStore(),
    // A fix a moment later, then a location error, then a fix...
    locate: async () => {
      calls += 1;
      await Bun.sleep(20);
      if (calls % 2 === 0) throw new Error("location unavailable");
      return { lat: 51.5072, lng: -0.1276, accuracyM: 5, speedMps: 0, headingDeg: 0 };
    },
    firstIntervalMs: 100,
    backoff: { firstMs: 50, maxMs: 100 },
  });
  client.on("noFix", (event) => noFix.push(event));
  client.on("ack", (ack) => {
    if (ack.dropped.length === 0) acks += 1;
  });
  void client.start();
  await waitUntil(() => acks >= 2 && noFix.length >= 1, 10_000, "acks around a missed fix");
  await client.close();
  const stored = parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)));
  expect([stored?.lat, stored?.lng]).toEqual([51.5072, -0.1276]);
  expect(noFix[0]).toEqual({ error: expect.any(Error) });
});

test("a locate that never answers is a missed fix after locateTimeoutMs, waited on for 5 of them, then asked anew: the pings go on", async () => {
  let calls = 0;
  const { client, seen } = await locatingClient({
    // The first call hangs (a permission prompt left open, a stuck location service).
    locate: () => {
      calls += 1;
      if (calls === 1) return new Promise<undefined>(() => undefined);
      return { lat: 51.5, lng: -0.12, accuracyM: 5, speedMps: 0, headingDeg: 0 };
    },
    locateTimeoutMs: 200,
    firstIntervalMs: 100,
    backoff: { firstMs: 50, maxMs: 100 },
  });
  void client.start();
  await waitUntil(() => seen.acks >= 1, 10_000, "an ack after the hung locate");
  await client.close();
  // Each interval while it hung was a missed fix; it was given up after 5 x 200 ms, not at once.
  expect(seen.noFix.length).toBeGreaterThanOrEqual(2);
  for (const event of seen.noFix)
    expect(String(event.error)).toContain("did not answer within 200 ms");
  expect(calls).toBe(2);
});

test("a locate still hanging when the next fix is due is waited on, not called again; its late fix is sent", async () => {
  let calls = 0;
  const hung = Promise.withResolvers<Fix>();
  const riderId = uniqueId("rider");
  const { client, seen } = await locatingClient(
    {
      // The first call hangs for several intervals (a stuck location service), then answers.
      locate: () => {
        calls += 1;
        return calls === 1 ? hung.promise : { ...PARKED, lat: 51.6 };
      },
      locateTimeoutMs: 300,
      firstIntervalMs: 50,
      backoff: { firstMs: 50, maxMs: 100 },
    },
    riderId,
  );
  void client.start();
  await waitUntil(() => seen.noFix.length >= 2, 10_000, "two fixes missed on the hung call");
  // One call outstanding, however many intervals passed (before: one more per interval).
  expect(calls).toBe(1);
  hung.resolve({ ...PARKED, lat: 51.55 });
  await waitUntil(() => seen.acks >= 1, 10_000, "the late fix acked");
  const stored = parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)));
  expect(stored?.lat).toBe(51.55);
  // Settled: the next fix is a new call.
  await waitUntil(() => calls >= 2, 10_000, "locate called again");
  await client.close();
});

test("the ack's next_interval_ms times the next fix, not the one after: a rider who stops gets the parked interval at once", async () => {
  // Moving (4 s by default) for the first fix, parked (1 s here) from then on.
  const locatedAt: number[] = [];
  const client = new RiderClient({
    ingest: fixture.ingest.grpc,
    token: await testToken(uniqueId("rider"), "rider", "london"),
    seqStore: new MemorySeqStore(),
    locate: () => {
      locatedAt.push(Date.now());
      return { ...PARKED, speedMps: locatedAt.length === 1 ? 5 : 0 };
    },
    firstIntervalMs: 100,
    backoff: { firstMs: 50, maxMs: 100 },
  });
  const intervals: number[] = [];
  client.on("ack", (ack) => intervals.push(ack.nextIntervalMs));
  void client.start();
  await waitUntil(() => intervals.length >= 2 && locatedAt.length >= 3, 15_000, "three fixes");
  await client.close();
  expect(intervals.slice(0, 2)).toEqual([4_000, 1_000]);
  // Timed from the fixes themselves (an ack's trip does not count): the second fix waits the
  // first ack's 4 s (not firstIntervalMs), the third the second's 1 s (not the 4 s it replaced:
  // it would take a 3 s stall of this process to look like it).
  const [first = 0, second = 0, third = 0] = locatedAt;
  const TIMER_EARLY_MS = 20;
  expect(second - first).toBeGreaterThanOrEqual(4_000 - TIMER_EARLY_MS);
  expect(third - second).toBeGreaterThanOrEqual(1_000 - TIMER_EARLY_MS);
  expect(third - second).toBeLessThan(4_000 - TIMER_EARLY_MS);
});
