import { afterAll, beforeAll, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import pino from "pino";
import { encodeRiderInboxMessage, offerMessage } from "../../core/messages/rider-inbox";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { createOffer } from "../../core/redis/order-scripts";
import { GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  inboxListeners,
  inGap,
  openLiveStream,
  sessionsWithCatchUps,
  testRiderSessions,
} from "../../test/support/live-streams";
import { seedOrder } from "../../test/support/orders";
import { DROPOFF, PICKUP } from "../../test/support/positions";
import { useRedisClient } from "../../test/support/redis-connection";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import type { RiderSessions } from "./rider-sessions";

const logger = pino({ level: "silent" });
const clock = Date.now();
let connection: RedisConnection;
let watcher: Redis;

const fixture = useRedisClient({
  stopFirst: async () => {
    watcher?.disconnect();
    await connection?.close();
  },
});

beforeAll(async () => {
  connection = await connectRedis(
    { mode: "standalone", url: fixture.redis.url },
    "rider-sessions-test",
    logger,
  );
  watcher = new Redis(fixture.redis.url);
});
afterAll(() => watcher?.disconnect());

const sessionsOf = (options: { inboxLingerMs?: number; maxIdle?: number } = {}) =>
  testRiderSessions(connection, { ...options, now: () => clock });

/** Waits for the catch-up after the inbox's first subscribe (announced too) to finish. */
const firstCatchUp = (caughtUp: unknown[]) =>
  waitUntil(() => caughtUp.length === 1, 4_000, "the first subscribe's catch-up");

type Sessions = RiderSessions;

/** One SendPing as the Connect handler makes it: acquire, accept, release. */
async function unaryPing(sessions: Sessions, riderId: string, seq: number): Promise<void> {
  const lease = sessions.acquire({ riderId, city: "london", exp: Date.now() / 1000 + 60 });
  try {
    const fix = {
      lat: 51.5 + seq / 111_320,
      lng: -0.12,
      accuracyM: 5,
      recordedAtMs: BigInt(clock),
    };
    const ack = await lease.session.accept(create(GeoPingSchema, { ...fix, seq: BigInt(seq) }));
    expect(ack.dropped).toEqual([]);
  } finally {
    lease.release();
  }
}

const listeners = (riderId: string) => inboxListeners(fixture.db, riderId);

/** How many times Redis has run `command` so far. */
async function commandCalls(command: string): Promise<number> {
  const stats = await fixture.db.info("commandstats");
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

/** Frames published to the order's track channel, from now on. */
async function trackOf(orderId: string): Promise<string[]> {
  const frames: string[] = [];
  await watcher.subscribe(keys.orderTrack(orderId));
  watcher.on("message", (channel: string, frame: string) => {
    if (channel === keys.orderTrack(orderId)) frames.push(frame);
  });
  return frames;
}

test("a rider on unary pings keeps its inbox subscription between calls, and an orders-changed sent while it is idle reaches its next ping", async () => {
  const sessions = sessionsOf();
  const riderId = uniqueId("rider");
  await unaryPing(sessions, riderId, 1);
  await waitUntil(async () => (await listeners(riderId)) === 1, 5_000, "inbox subscribed");
  // The inbox's connection came up after the rider listened: its first subscribe is announced
  // as a gap (messages before it were missed), so the next ping after that announcement reads
  // the orders once more. NUMSUB can count the subscriber before it hears its own reply, so
  // ping until a ping reads nothing.
  let seq = 2;
  await waitUntil(
    async () => {
      const before = await commandCalls("smembers");
      await unaryPing(sessions, riderId, seq++);
      return (await commandCalls("smembers")) === before;
    },
    5_000,
    "the first subscribe's gap handled",
  );
  const [subscribes, unsubscribes, orderReads] = await Promise.all(
    ["subscribe", "unsubscribe", "smembers"].map(commandCalls),
  );
  for (const stop = seq + 3; seq < stop; seq++) await unaryPing(sessions, riderId, seq);
  expect(await listeners(riderId)).toBe(1);
  // No SUBSCRIBE, UNSUBSCRIBE or read of its orders per ping.
  expect(await commandCalls("subscribe")).toBe(subscribes as number);
  expect(await commandCalls("unsubscribe")).toBe(unsubscribes as number);
  expect(await commandCalls("smembers")).toBe(orderReads as number);

  const orderId = uniqueId("order");
  await seedOrder(fixture.db, { orderId, customerId: "c1", riderId });
  const frames = await trackOf(orderId);
  expect(
    await fixture.db.publish(
      keys.riderInbox(riderId),
      encodeRiderInboxMessage({ type: "orders-changed" }),
    ),
  ).toBe(1);
  // The message reaches the idle session on its own time: ping until a position reaches the order.
  await waitUntil(
    async () => {
      await unaryPing(sessions, riderId, seq++);
      return frames.length > 0;
    },
    5_000,
    "a position on the new order",
  );
  expect(await commandCalls("smembers")).toBe((orderReads as number) + 1);
});

test("once the linger runs out the inbox is let go, and the next ping subscribes again and reads the orders it missed", async () => {
  const sessions = sessionsOf({ inboxLingerMs: 100 });
  const riderId = uniqueId("rider");
  await unaryPing(sessions, riderId, 1);
  await waitUntil(async () => (await listeners(riderId)) === 1, 5_000, "inbox subscribed");
  await waitUntil(async () => (await listeners(riderId)) === 0, 5_000, "inbox let go");

  // Assigned while nobody listened: no message reaches this node.
  const orderId = uniqueId("order");
  await seedOrder(fixture.db, { orderId, customerId: "c1", riderId });
  const frames = await trackOf(orderId);
  await unaryPing(sessions, riderId, 2);
  await waitUntil(() => frames.length === 1, 5_000, "a position on the order");
  await waitUntil(async () => (await listeners(riderId)) === 1, 5_000, "inbox subscribed again");
});

test("an idle session dropped past maxIdle lets its inbox go at once", async () => {
  const sessions = sessionsOf({ maxIdle: 1 });
  const [first, second] = [uniqueId("rider"), uniqueId("rider")];
  await unaryPing(sessions, first, 1);
  await waitUntil(async () => (await listeners(first)) === 1, 5_000, "first inbox subscribed");
  await unaryPing(sessions, second, 1);
  await waitUntil(async () => (await listeners(first)) === 0, 5_000, "first inbox let go");
  await waitUntil(async () => (await listeners(second)) === 1, 5_000, "second inbox kept");
});

const liveStream = (sessions: Sessions, riderId: string) =>
  openLiveStream(sessions, fixture.db, riderId);

test("a newer stream opened elsewhere during an inbox gap supersedes the live one once the subscription is back", async () => {
  const sessions = sessionsOf();
  const riderId = uniqueId("rider");
  const { lease, ends } = await liveStream(sessions, riderId);
  try {
    // What another node's StreamPings does: draw generation 2 and announce it, here unheard.
    const opened = encodeRiderInboxMessage({ type: "stream-opened", generation: 2 });
    await inGap(
      fixture.db,
      ["INCR", keys.riderStream(riderId)],
      ["PUBLISH", keys.riderInbox(riderId), opened],
    );
    await waitUntil(() => ends.length > 0, 4_000, "the stream ended");
    expect(ends).toEqual([{ kind: "superseded" }]);
  } finally {
    lease.release();
  }
});

test("an order assigned and an offer made during an inbox gap reach the live stream once the subscription is back; an offer already sent is not sent again", async () => {
  const { sessions, caughtUp } = sessionsWithCatchUps(connection, { now: () => clock });
  const riderId = uniqueId("rider");
  const { lease, offers, ends } = await liveStream(sessions, riderId);
  await firstCatchUp(caughtUp);
  let seq = 1;
  const ping = async () => {
    const fix = {
      lat: 51.5 + seq / 111_320,
      lng: -0.12,
      accuracyM: 5,
      recordedAtMs: BigInt(clock),
    };
    const ack = await lease.session.accept(create(GeoPingSchema, { ...fix, seq: BigInt(seq++) }));
    expect(ack.dropped).toEqual([]);
  };
  try {
    await ping(); // reads the rider's orders: none yet
    const [assigned, offered] = [uniqueId("order"), uniqueId("order")];
    await seedOrder(fixture.db, { orderId: assigned, customerId: "c1", riderId });
    await seedOrder(fixture.db, { orderId: offered, customerId: "c2" });
    const token = await createOffer(connection, {
      city: "london",
      riderId,
      orderId: offered,
      ttlMs: 30_000,
    });
    const changed = encodeRiderInboxMessage({ type: "orders-changed" });
    await inGap(fixture.db, ["PUBLISH", keys.riderInbox(riderId), changed]);
    await waitUntil(() => offers.length > 0, 4_000, "the offer");
    expect(
      offers.map(({ orderId, fencingToken, restaurantId }) => [
        orderId,
        fencingToken,
        restaurantId,
      ]),
    ).toEqual([[offered, token, "rest-1"]]);
    expect(offers[0]?.expiresAtMs).toBeGreaterThan(Date.now());
    const frames = await trackOf(assigned);
    await waitUntil(
      async () => {
        await ping();
        return frames.length > 0;
      },
      5_000,
      "a position on the order assigned in the gap",
    );
    // A second gap: the pending offer was sent already.
    await waitUntil(() => caughtUp.length === 2, 4_000, "the first gap's catch-up");
    await inGap(fixture.db);
    await waitUntil(() => caughtUp.length === 3, 4_000, "the second gap's catch-up");
    expect([caughtUp.map(({ offerSent }) => offerSent), offers.length, ends]).toEqual([
      [false, true, false],
      1,
      [],
    ]);
  } finally {
    lease.release();
  }
});

test("an offer older than one already sent is not sent, by its push or by a gap's catch-up (a read begun before a newer offer)", async () => {
  const { sessions, caughtUp } = sessionsWithCatchUps(connection, { now: () => clock });
  const riderId = uniqueId("rider");
  const { lease, offers } = await liveStream(sessions, riderId);
  await firstCatchUp(caughtUp);
  const [older, newer, newest] = [uniqueId("order"), uniqueId("order"), uniqueId("order")];
  await seedOrder(fixture.db, { orderId: older, customerId: "c1" });
  const push = (orderId: string, seq: number) =>
    fixture.db.publish(
      keys.riderInbox(riderId),
      encodeRiderInboxMessage(
        offerMessage(
          { orderId, restaurantId: "rest-1", pickup: PICKUP, dropoff: DROPOFF },
          { fencingToken: `${orderId}:${seq}`, expiresAtMs: Date.now() + 30_000 },
        ),
      ),
    );
  try {
    await push(newer, 11);
    await waitUntil(() => offers.length > 0, 4_000, "the newer offer");
    // What a catch-up reads when it reads the older offer's lock just before that expires and the newer offer is pushed.
    await fixture.db.set(keys.offerForRider("london", riderId), `${older}:10`, "PX", 30_000);
    await inGap(fixture.db);
    await waitUntil(() => caughtUp.length === 2, 4_000, "the gap's catch-up");
    expect(offers.map(({ fencingToken }) => fencingToken)).toEqual([`${newer}:11`]);
    // Messages on one channel arrive in order: once the newest is here the older one was heard.
    await push(older, 10);
    await push(newest, 12);
    await waitUntil(() => offers.length > 1, 4_000, "the newest offer");
    expect(offers.map(({ fencingToken }) => fencingToken)).toEqual([`${newer}:11`, `${newest}:12`]);
  } finally {
    lease.release();
  }
});

test("a pushed offer goes down the stream with the time it has left on the node's clock; one whose time is up when it arrives is not sent", async () => {
  const { sessions, caughtUp } = sessionsWithCatchUps(connection, { now: () => clock });
  const riderId = uniqueId("rider");
  const { lease, offers } = await liveStream(sessions, riderId);
  await firstCatchUp(caughtUp);
  const push = (orderId: string, seq: number, expiresAtMs: number) =>
    fixture.db.publish(
      keys.riderInbox(riderId),
      encodeRiderInboxMessage(
        offerMessage(
          { orderId, restaurantId: "rest-1", pickup: PICKUP, dropoff: DROPOFF },
          { fencingToken: `${orderId}:${seq}`, expiresAtMs },
        ),
      ),
    );
  try {
    // On the node's clock one expired as it arrived; the next has 12.5 s left.
    await push("spent", 1, clock);
    await push("live", 2, clock + 12_500);
    await waitUntil(() => offers.length > 0, 4_000, "the live offer");
    expect(offers.map(({ orderId, expiresInMs }) => [orderId, expiresInMs])).toEqual([
      ["live", 12_500],
    ]);
  } finally {
    lease.release();
  }
});
