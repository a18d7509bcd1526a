import { beforeAll, expect, test } from "bun:test";
import pino from "pino";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { createOffer } from "../../core/redis/order-scripts";
import type { RideOffer } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { pingTrack, useIngestOnRedis } from "../support/ingest";
import { inboxListeners, inGap } from "../support/live-streams";
import { seedOrder } from "../support/orders";
import { openPingStream, type PingStream } from "../support/ping-stream";
import { testToken, uniqueId } from "../support/tokens";
import { waitUntil } from "../support/wait";

// An offer's time left (RideOffer.expires_in_ms, the API's expiresInMs): what
// a phone counts down from, as its clock may be seconds off the server's.
// Every tier here runs on this machine's clock, so the server's clock can be
// read around each step: the bounds below are what a right answer must meet
// however long a step takes.
const fixture = useIngestOnRedis(
  {},
  {
    stopFirst: async () => {
      await gateway?.stop();
      await connection?.close();
    },
  },
);
let gateway: TestGateway;
/** For an offer made as the gateway makes it, its push lost. */
let connection: RedisConnection;

beforeAll(async () => {
  gateway = await startTestGateway({ REDIS_URL: fixture.redis.url });
  connection = await connectRedis(
    { mode: "standalone", url: fixture.redis.url },
    "offer-time-left-test",
    pino({ level: "silent" }),
  );
});

const TTL_MS = 30_000;

async function offerThroughGateway(orderId: string, riderId: string) {
  const response = await gateway.call("/v1/dispatch/offers", {
    method: "POST",
    body: JSON.stringify({ orderId, riderId, city: "london", ttlMs: TTL_MS }),
    as: { sub: "dispatcher-1", role: "dispatcher" },
  });
  expect(response.status).toBe(201);
  return (await response.json()) as {
    fencingToken: string;
    expiresAtMs: number;
    expiresInMs: number;
  };
}

/** The rider's StreamPings, its first ping sent (seq `seq`). */
async function openRiderStream(riderId: string, seq = 1n): Promise<PingStream> {
  const rider = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
  const [ping] = pingTrack(1, { startSeq: seq });
  if (!ping) throw new Error("unreachable");
  rider.send(ping);
  return rider;
}

/** The rider's StreamPings, its first ping acked and its inbox subscribed on the ingest. */
async function streamingRider(riderId: string): Promise<PingStream> {
  const rider = await openRiderStream(riderId);
  expect((await rider.next()).event.case).toBe("ack");
  await waitUntil(async () => (await inboxListeners(fixture.db, riderId)) >= 1, 5_000, "inbox");
  return rider;
}

async function nextOffer(rider: PingStream): Promise<RideOffer> {
  const pushed = await rider.next();
  if (pushed.event.case !== "offer") throw new Error(`expected an offer, got ${pushed.event.case}`);
  return pushed.event.value;
}

/** The stream's first offer, past its acks (an offer sent as it opens may come before or after). */
async function firstOffer(rider: PingStream): Promise<RideOffer> {
  for (;;) {
    const response = await rider.next();
    if (response.event.case === "offer") return response.event.value;
    expect(response.event.case).toBe("ack");
  }
}

/** Open rider streams on the ingest (edge_ingest_streams). */
async function openStreams(): Promise<number> {
  return (await fixture.ingest.app.metrics.streams.get()).values[0]?.value ?? 0;
}

/** As if 20 s of the offer's 30 s went by before the rider is reached: 10 s left. */
async function shortenOffer(riderId: string, orderId: string): Promise<number> {
  const leftMs = 10_000;
  for (const key of [keys.offerForRider("london", riderId), keys.offerForOrder("london", orderId)])
    await fixture.db.pexpire(key, leftMs);
  return leftMs;
}

/** Offers this ingest sent down a stream (edge_ingest_offers_delivered_total). */
async function offersDelivered(): Promise<number> {
  return (await fixture.ingest.app.metrics.offersDelivered.get()).values[0]?.value ?? 0;
}

/** When the rider's offer lock expires (ms, this machine's clock), from its PTTL. */
async function lockExpiresAt(riderId: string): Promise<number> {
  const ttlMs = await fixture.db.pttl(keys.offerForRider("london", riderId));
  return Date.now() + ttlMs;
}

test("an offer pushed down a live stream (counted as delivered), and the dispatcher's answer, carry the time left as sent: the TTL less what passed, never past the lock", async () => {
  const [orderId, riderId] = [uniqueId("order"), uniqueId("rider")];
  await seedOrder(fixture.db, { orderId, customerId: "c1" });
  const rider = await streamingRider(riderId);
  const delivered = await offersDelivered();
  try {
    const before = Date.now();
    const answer = await offerThroughGateway(orderId, riderId);
    const answeredAt = Date.now();
    const offer = await nextOffer(rider);
    const receivedAt = Date.now();
    const lockEnd = await lockExpiresAt(riderId);

    expect(offer.fencingToken).toBe(answer.fencingToken);
    expect(await offersDelivered()).toBe(delivered + 1);
    const expiresAtMs = Number(offer.expiresAtMs);
    expect(expiresAtMs).toBe(answer.expiresAtMs);
    expect(expiresAtMs).toBeLessThanOrEqual(lockEnd);
    // The expiry less the server's clock when each was sent, so within the TTL and above 0.
    for (const [timeLeft, sentBy] of [
      [offer.expiresInMs, receivedAt],
      [answer.expiresInMs, answeredAt],
    ] as const) {
      expect(timeLeft).toBeGreaterThan(0);
      expect(timeLeft).toBeLessThanOrEqual(TTL_MS);
      expect(timeLeft).toBeLessThanOrEqual(expiresAtMs - before);
      expect(timeLeft).toBeGreaterThanOrEqual(expiresAtMs - sentBy);
    }
  } finally {
    rider.cancel();
  }
});

test.each(["had no session", "had its stream drop (its session idle)"])(
  "an offer made while the rider %s goes down the stream it opens (counted as delivered), with the reduced time its lock has left",
  async (before) => {
    const [orderId, riderId] = [uniqueId("order"), uniqueId("rider")];
    await seedOrder(fixture.db, { orderId, customerId: "c1" });
    if (before !== "had no session") {
      // A tunnel, or the app killed: the stream is gone, the session idles, its inbox listened to.
      const streams = await openStreams();
      (await streamingRider(riderId)).cancel();
      await waitUntil(async () => (await openStreams()) === streams, 5_000, "the stream gone");
      expect(await inboxListeners(fixture.db, riderId)).toBe(1);
    }
    // Its push reaches no stream.
    const { fencingToken } = await offerThroughGateway(orderId, riderId);
    const leftMs = await shortenOffer(riderId, orderId);
    const delivered = await offersDelivered();
    const openedAt = Date.now();
    const rider = await openRiderStream(riderId, 2n);
    try {
      const offer = await firstOffer(rider);
      const receivedAt = Date.now();
      const lockEnd = await lockExpiresAt(riderId);

      expect(offer.fencingToken).toBe(fencingToken);
      expect(await offersDelivered()).toBe(delivered + 1);
      const expiresAtMs = Number(offer.expiresAtMs);
      expect(expiresAtMs).toBeLessThanOrEqual(lockEnd);
      expect(offer.expiresInMs).toBeGreaterThan(0);
      expect(offer.expiresInMs).toBeLessThanOrEqual(leftMs);
      expect(offer.expiresInMs).toBeLessThanOrEqual(expiresAtMs - openedAt);
      expect(offer.expiresInMs).toBeGreaterThanOrEqual(expiresAtMs - receivedAt);
    } finally {
      rider.cancel();
    }
  },
);

test("a pending offer a stream missed, caught up after the ingest's inbox gap (counted as delivered), carries the reduced time its lock has left", async () => {
  const [orderId, riderId] = [uniqueId("order"), uniqueId("rider")];
  await seedOrder(fixture.db, { orderId, customerId: "c1" });
  const rider = await streamingRider(riderId);
  // Offered as the gateway offers, while the ingest's inbox subscription is down: its push is lost.
  const fencingToken = await createOffer(connection, {
    city: "london",
    riderId,
    orderId,
    ttlMs: TTL_MS,
  });
  const leftMs = await shortenOffer(riderId, orderId);
  const delivered = await offersDelivered();
  try {
    const gapAt = Date.now();
    await inGap(fixture.db);
    const offer = await nextOffer(rider);
    const receivedAt = Date.now();
    const lockEnd = await lockExpiresAt(riderId);

    expect(offer.fencingToken).toBe(fencingToken);
    expect(await offersDelivered()).toBe(delivered + 1);
    const expiresAtMs = Number(offer.expiresAtMs);
    expect(expiresAtMs).toBeLessThanOrEqual(lockEnd);
    expect(offer.expiresInMs).toBeGreaterThan(0);
    expect(offer.expiresInMs).toBeLessThanOrEqual(leftMs);
    expect(offer.expiresInMs).toBeLessThanOrEqual(expiresAtMs - gapAt);
    expect(offer.expiresInMs).toBeGreaterThanOrEqual(expiresAtMs - receivedAt);
  } finally {
    rider.cancel();
  }
});
