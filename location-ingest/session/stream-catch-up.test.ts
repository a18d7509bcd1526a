import { beforeAll, expect, test } from "bun:test";
import pino from "pino";
import { encodeRiderInboxMessage } from "../../core/messages/rider-inbox";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { createOffer } from "../../core/redis/order-scripts";
import {
  inGap,
  openLiveStream,
  sessionsWithCatchUps,
  testRiderSessions,
} from "../../test/support/live-streams";
import { seedOrder } from "../../test/support/orders";
import { useRedisClient } from "../../test/support/redis-connection";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { MAX_CATCH_UPS_IN_FLIGHT, OFFER_MIN_ANSWER_MS } from "./stream-catch-up";

const clock = Date.now();
let connection: RedisConnection;

const fixture = useRedisClient({ stopFirst: async () => connection?.close() });

beforeAll(async () => {
  connection = await connectRedis(
    { mode: "standalone", url: fixture.redis.url },
    "stream-catch-up-test",
    pino({ level: "silent" }),
  );
});

/**
 * Makes the rider's next generation draw fail, as it does with Redis away:
 * INCR refuses a counter that is not an integer (a real Redis error).
 */
const failNextDraw = (riderId: string) => fixture.db.set(keys.riderStream(riderId), "not-a-number");

/** A live stream on a node whose generation draw failed (it holds generation 0), its first catch-up done. */
async function streamWithoutGeneration(riderId: string, now: () => number) {
  const node = sessionsWithCatchUps(connection, { now });
  await failNextDraw(riderId);
  const stream = await openLiveStream(node.sessions, fixture.db, riderId, "not-a-number");
  await waitUntil(() => node.caughtUp.length === 1, 4_000, "the first subscribe's catch-up");
  return { ...stream, caughtUp: node.caughtUp };
}

test("a stream whose draw failed ends as superseded after an inbox gap in which a stream opened after it drew and announced", async () => {
  const riderId = uniqueId("rider");
  const { lease, ends } = await streamWithoutGeneration(riderId, Date.now);
  try {
    // Another node's StreamPings, opened after this one: it draws and announces, unheard here.
    // (Its opening is on Redis's clock, this machine's: the script records it so.)
    const opened = encodeRiderInboxMessage({ type: "stream-opened", generation: 1 });
    await inGap(
      fixture.db,
      ["SET", keys.riderStream(riderId), 1],
      ["SET", keys.riderStreamOpened(riderId), Date.now()],
      ["SET", keys.riderStreamHolder(riderId), "another-stream"],
      ["PUBLISH", keys.riderInbox(riderId), opened],
    );
    await waitUntil(() => ends.length > 0, 4_000, "the stream ended");
    expect(ends).toEqual([{ kind: "superseded" }]);
  } finally {
    lease.release();
  }
});

test("a stream whose draw failed draws its generation after an inbox gap when no stream opened after it, and supersedes the older stream elsewhere", async () => {
  const riderId = uniqueId("rider");
  const older = sessionsWithCatchUps(connection, { now: () => clock - 1 });
  const olderStream = await openLiveStream(older.sessions, fixture.db, riderId);
  await waitUntil(() => older.caughtUp.length === 1, 4_000, "the older stream's first catch-up");
  const { lease, ends, caughtUp } = await streamWithoutGeneration(riderId, () => clock);
  try {
    // Redis is back with the older stream's generation; neither node heard anything meanwhile.
    await inGap(fixture.db, ["SET", keys.riderStream(riderId), 1]);
    await waitUntil(() => olderStream.ends.length > 0, 4_000, "the older stream ended");
    await waitUntil(() => caughtUp.length === 2, 4_000, "the gap's catch-up");
    expect([olderStream.ends, ends]).toEqual([[{ kind: "superseded" }], []]);
    expect(await fixture.db.get(keys.riderStream(riderId))).toBe("2");
  } finally {
    lease.release();
    olderStream.lease.release();
  }
});

test("a lone stream whose draw failed is not ended by the gap's catch-up: it draws its generation, and a later stream supersedes it", async () => {
  const riderId = uniqueId("rider");
  const { lease, ends, caughtUp } = await streamWithoutGeneration(riderId, () => clock);
  try {
    await inGap(fixture.db, ["DEL", keys.riderStream(riderId)]);
    await waitUntil(() => caughtUp.length === 2, 4_000, "the gap's catch-up");
    expect([ends, await fixture.db.get(keys.riderStream(riderId))]).toEqual([[], "1"]);
    const later = testRiderSessions(connection, { now: () => clock + 1 });
    const laterStream = await openLiveStream(later, fixture.db, riderId, "2");
    await waitUntil(() => ends.length > 0, 4_000, "the stream ended");
    expect([ends, laterStream.ends]).toEqual([[{ kind: "superseded" }], []]);
    laterStream.lease.release();
  } finally {
    lease.release();
  }
});

test("a stream whose generation counter was lost during an inbox gap (Redis restarted empty) draws again, so the rider's next stream still supersedes it", async () => {
  const riderId = uniqueId("rider");
  const node = sessionsWithCatchUps(connection, { now: () => clock });
  await fixture.db.set(keys.riderStream(riderId), 2);
  const { lease, ends } = await openLiveStream(node.sessions, fixture.db, riderId, "3");
  try {
    await waitUntil(() => node.caughtUp.length === 1, 4_000, "the first subscribe's catch-up");
    await inGap(
      fixture.db,
      ["DEL", keys.riderStream(riderId)],
      ["DEL", keys.riderStreamOpened(riderId)],
      ["DEL", keys.riderStreamHolder(riderId)],
    );
    await waitUntil(() => node.caughtUp.length === 2, 4_000, "the gap's catch-up");
    expect(ends).toEqual([]);
    // Without the new draw the next stream would draw 1, below the 3 this one holds, and both stay.
    const next = testRiderSessions(connection, { now: () => clock + 1 });
    const nextStream = await openLiveStream(next, fixture.db, riderId, "2");
    await waitUntil(() => ends.length > 0, 4_000, "the stream ended");
    expect([ends, nextStream.ends]).toEqual([[{ kind: "superseded" }], []]);
    nextStream.lease.release();
  } finally {
    lease.release();
  }
});

test("a gap's catch-up sends no offer with less than OFFER_MIN_ANSWER_MS left, and one it sends expires no later than its lock", async () => {
  const riderId = uniqueId("rider");
  const { sessions, caughtUp } = sessionsWithCatchUps(connection, { now: Date.now });
  const { lease, offers } = await openLiveStream(sessions, fixture.db, riderId);
  const [soon, later] = [uniqueId("order"), uniqueId("order")];
  await seedOrder(fixture.db, { orderId: soon, customerId: "c1" });
  await seedOrder(fixture.db, { orderId: later, customerId: "c2" });
  try {
    await waitUntil(() => caughtUp.length === 1, 4_000, "the first subscribe's catch-up");
    const ttlMs = OFFER_MIN_ANSWER_MS - 500;
    await createOffer(connection, { city: "london", riderId, orderId: soon, ttlMs });
    await inGap(fixture.db);
    await waitUntil(() => caughtUp.length === 2, 4_000, "the gap's catch-up");
    expect([caughtUp[1]?.offerSent, offers]).toEqual([false, []]);

    await waitUntil(
      async () => (await fixture.db.exists(keys.offerForRider("london", riderId))) === 0,
      4_000,
      "the short offer expired",
    );
    const token = await createOffer(connection, {
      city: "london",
      riderId,
      orderId: later,
      ttlMs: 30_000,
    });
    const lockExpiresBy = Date.now() + 30_000;
    await inGap(fixture.db);
    await waitUntil(() => caughtUp.length === 3, 4_000, "the second gap's catch-up");
    expect(offers.map(({ fencingToken }) => fencingToken)).toEqual([token]);
    const expiresAtMs = offers[0]?.expiresAtMs ?? 0;
    expect(expiresAtMs).toBeLessThanOrEqual(lockExpiresBy);
    expect(expiresAtMs - Date.now()).toBeGreaterThan(OFFER_MIN_ANSWER_MS);
  } finally {
    lease.release();
  }
});

test(`more streams than ${MAX_CATCH_UPS_IN_FLIGHT} caught up after one gap: at most ${MAX_CATCH_UPS_IN_FLIGHT} run at once, and every stream gets its catch-up`, async () => {
  const { sessions, caughtUp } = sessionsWithCatchUps(connection, { now: () => clock });
  const riderIds = Array.from({ length: MAX_CATCH_UPS_IN_FLIGHT + 40 }, () => uniqueId("rider"));
  const streams = riderIds.map((riderId) =>
    sessions.openLiveStream(
      { riderId, city: "london", exp: Date.now() / 1000 + 60 },
      { offer: () => undefined, end: () => undefined },
    ),
  );
  try {
    await waitUntil(
      () => caughtUp.length === riderIds.length,
      10_000,
      "every stream's first catch-up",
    );
    await inGap(fixture.db);
    await waitUntil(
      () => caughtUp.length === 2 * riderIds.length,
      10_000,
      "every stream's gap catch-up",
    );
    const gapCatchUps = caughtUp.slice(riderIds.length);
    expect(gapCatchUps.map(({ riderId }) => riderId).sort()).toEqual([...riderIds].sort());
    // All were queued at once: the first to finish saw the bound reached, none saw it passed.
    expect(Math.max(...gapCatchUps.map(({ catchUpsRunning }) => catchUpsRunning))).toBe(
      MAX_CATCH_UPS_IN_FLIGHT,
    );
  } finally {
    for (const stream of streams) stream.release();
  }
});
