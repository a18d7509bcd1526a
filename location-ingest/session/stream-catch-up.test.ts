import { beforeAll, expect, test } from "bun:test";
import pino from "pino";
import { encodeRiderInboxMessage, offerMessage } from "../../core/messages/rider-inbox";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { readOrderRecord } from "../../core/redis/order-record";
import {
  assignRider,
  createOffer,
  takeOffer,
  transitionOrder,
} from "../../core/redis/order-scripts";
import {
  inboxListeners,
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

/**
 * A node whose inbox connection is up, its first subscribe's gap caught up:
 * a stream opened on it now is caught up as it opens, with no gap.
 */
async function nodeUp(now: () => number = Date.now) {
  const node = sessionsWithCatchUps(connection, { now });
  const { lease } = await openLiveStream(node.sessions, fixture.db, uniqueId("rider"));
  await waitUntil(() => node.caughtUp.length === 1, 4_000, "the first subscribe's catch-up");
  lease.release();
  // That stream's open catch-up ran before its gap's (or became it): the record starts afresh.
  node.opened.splice(0);
  return node;
}

/** A CONFIRMED order offered to the rider (create-offer.lua, as the gateway does); its push goes nowhere. */
async function pendingOffer(riderId: string, ttlMs = 30_000) {
  const orderId = uniqueId("order");
  await seedOrder(fixture.db, { orderId, customerId: "c1" });
  const token = await createOffer(connection, { city: "london", riderId, orderId, ttlMs });
  return { orderId, riderId, token };
}

const tokensOf = (offers: readonly { fencingToken: string }[]) =>
  offers.map(({ fencingToken }) => fencingToken);

test("a stream that opens is sent its rider's pending offer (pushed while the rider had no stream), expiring no later than its lock; not one with less than OFFER_MIN_ANSWER_MS left", async () => {
  const { sessions, opened, caughtUp } = await nodeUp();
  const [soon, later] = [uniqueId("rider"), uniqueId("rider")];
  await pendingOffer(soon, OFFER_MIN_ANSWER_MS - 500);
  const { token } = await pendingOffer(later);
  const lockExpiresBy = Date.now() + 30_000;
  const [soonStream, laterStream] = [
    await openLiveStream(sessions, fixture.db, soon),
    await openLiveStream(sessions, fixture.db, later),
  ];
  try {
    await waitUntil(() => opened.length === 2, 4_000, "both streams' catch-ups as they opened");
    expect(
      Object.fromEntries(opened.map(({ riderId, offerSent }) => [riderId, offerSent])),
    ).toEqual({ [soon]: false, [later]: true });
    expect([soonStream.offers, tokensOf(laterStream.offers)]).toEqual([[], [token]]);
    const offer = laterStream.offers[0];
    expect(offer?.expiresAtMs).toBeLessThanOrEqual(lockExpiresBy);
    expect(offer?.expiresInMs).toBeGreaterThan(OFFER_MIN_ANSWER_MS);
    // No gap: the open read alone, with no generation recheck (the open drew it).
    expect(caughtUp.length).toBe(1);
    expect(await fixture.db.get(keys.riderStream(later))).toBe("1");
  } finally {
    soonStream.lease.release();
    laterStream.lease.release();
  }
});

test("a stream that opens is not sent an offer already accepted, declined or expired, nor one whose order no longer waits for a rider", async () => {
  const { sessions, opened } = await nodeUp();
  const [accepted, declined, expired, cancelled, pending] = await Promise.all(
    Array.from({ length: 5 }, () => pendingOffer(uniqueId("rider"), 30_000)),
  );
  if (!accepted || !declined || !expired || !cancelled || !pending) throw new Error("unreachable");
  // What the gateway does with each answer (PATCH /v1/rides/{orderId}).
  await takeOffer(connection, { city: "london", ...accepted }, 1_000);
  await assignRider(connection, accepted);
  await takeOffer(connection, { city: "london", ...declined });
  await fixture.db.pexpire(keys.offerForRider("london", expired.riderId), 1);
  await transitionOrder(connection, {
    orderId: cancelled.orderId,
    expectedVersion: 1,
    to: "CANCELLED",
    legalFrom: ["CONFIRMED"],
  });
  // Its offer is still pending: only the order tells it is no longer to be taken.
  expect(await fixture.db.get(keys.offerForRider("london", cancelled.riderId))).toBe(
    cancelled.token,
  );
  expect((await readOrderRecord(connection.client, accepted.orderId))?.status).toBe("ASSIGNED");
  await waitUntil(
    async () => (await fixture.db.exists(keys.offerForRider("london", expired.riderId))) === 0,
    4_000,
    "the expired offer's lock gone",
  );
  const riders = [accepted, declined, expired, cancelled, pending];
  const streams = [];
  for (const { riderId } of riders)
    streams.push(await openLiveStream(sessions, fixture.db, riderId));
  try {
    await waitUntil(() => opened.length === riders.length, 4_000, "every stream's open catch-up");
    expect(streams.map(({ offers }) => tokensOf(offers))).toEqual([
      [],
      [],
      [],
      [],
      [pending.token],
    ]);
  } finally {
    for (const { lease } of streams) lease.release();
  }
});

test("a stream that opens as its rider's offer is pushed is sent it once: by the push or by the read, not both", async () => {
  const { sessions, opened } = await nodeUp();
  const riderId = uniqueId("rider");
  const { orderId, token } = await pendingOffer(riderId);
  const order = await readOrderRecord(connection.client, orderId);
  if (!order) throw new Error("unreachable");
  const push = (fencingToken: string) =>
    fixture.db.publish(
      keys.riderInbox(riderId),
      encodeRiderInboxMessage(
        offerMessage(order, { fencingToken, expiresAtMs: Date.now() + 30_000 }),
      ),
    );
  const offers: string[] = [];
  const lease = sessions.openLiveStream(
    { riderId, city: "london", exp: Date.now() / 1000 + 60 },
    { offer: ({ fencingToken }) => offers.push(fencingToken), end: () => undefined },
  );
  try {
    // The push reaches the stream (its inbox is subscribed), and the read, not yet done
    // (it follows the generation draw), finds the same offer pending.
    await waitUntil(async () => (await inboxListeners(fixture.db, riderId)) >= 1, 4_000, "inbox");
    expect(await push(token)).toBe(1);
    await waitUntil(() => opened.length === 1, 4_000, "the stream's open catch-up");
    // Messages on one channel arrive in order: once this one is here the first push was heard.
    const marker = `${orderId}:${Number.MAX_SAFE_INTEGER}`;
    await push(marker);
    await waitUntil(() => offers.includes(marker), 4_000, "the marker push");
    expect(offers).toEqual([token, marker]);
  } finally {
    lease.release();
  }
});

test(`more streams than ${MAX_CATCH_UPS_IN_FLIGHT} opening at once: at most ${MAX_CATCH_UPS_IN_FLIGHT} read their pending offer at once, and each is sent its own`, async () => {
  const { sessions, opened, caughtUp } = await nodeUp();
  const pending = await Promise.all(
    Array.from({ length: MAX_CATCH_UPS_IN_FLIGHT + 40 }, () => pendingOffer(uniqueId("rider"))),
  );
  const sent = new Map<string, string[]>(pending.map(({ riderId }) => [riderId, []]));
  const streams = pending.map(({ riderId }) =>
    sessions.openLiveStream(
      { riderId, city: "london", exp: Date.now() / 1000 + 60 },
      {
        offer: ({ fencingToken }) => sent.get(riderId)?.push(fencingToken),
        end: () => undefined,
      },
    ),
  );
  try {
    await waitUntil(() => opened.length === pending.length, 10_000, "every stream's open catch-up");
    expect(opened.map(({ riderId }) => riderId).sort()).toEqual(
      pending.map(({ riderId }) => riderId).sort(),
    );
    expect([...sent.values()]).toEqual(pending.map(({ token }) => [token]));
    // Their draws finish together: the first read to finish saw the bound reached, none passed.
    expect(Math.max(...opened.map(({ catchUpsRunning }) => catchUpsRunning))).toBe(
      MAX_CATCH_UPS_IN_FLIGHT,
    );
    expect(caughtUp.length).toBe(1);
  } finally {
    for (const stream of streams) stream.release();
  }
});
