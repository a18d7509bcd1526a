import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { keys } from "../../core/redis/keys";
import { ORDER_EVENTS_TOPIC } from "../../gateway/outbox-relay";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { startTestIngest, type TestIngest } from "../support/ingest";
import { type KafkaBroker, startKafkaBroker } from "../support/kafka-broker";
import { seedOrder } from "../support/orders";
import { type RedisServer, startRedis } from "../support/redis-server";
import { startSteadyRider } from "../support/steady-rider";
import { testToken, uniqueId } from "../support/tokens";
import { openWatcher, startTestTracking, type TestTrackingNode } from "../support/tracking";
import { waitUntil } from "../support/wait";

// Redis restarts with nothing in it (no persistence) under running tiers:
// nothing is restarted, and everything that lives in Redis only because the
// tiers put it there comes back by itself.
const RING_TTL = { TRACKING_NODE_TTL_MS: "5000" };
let redis: RedisServer;
let broker: KafkaBroker;
let db: Redis;
let ingest: TestIngest;
let nodes: TestTrackingNode[] = [];
let gateway: TestGateway;

beforeAll(async () => {
  [redis, broker] = await Promise.all([startRedis(), startKafkaBroker()]);
  db = new Redis(redis.url);
  const env = { REDIS_URL: redis.url };
  ingest = await startTestIngest({ ...env, RIDER_SWEEP_EVERY_MS: "200" });
  nodes = [
    await startTestTracking({ ...env, ...RING_TTL }),
    await startTestTracking({ ...env, ...RING_TTL }),
  ];
  gateway = await startTestGateway({
    ...env,
    ...RING_TTL,
    KAFKA_BROKERS: broker.brokers,
    OUTBOX_RELAY_EVERY_MS: "20",
    OUTBOX_LEASE_MS: "1000",
  });
});

afterAll(async () => {
  await gateway?.stop();
  for (const node of nodes) await node.stop();
  await ingest?.stop();
  db?.disconnect();
  await broker?.stop();
  await redis?.stop();
});

const rings = () => [gateway.app.ring, ...nodes.map((node) => node.app.ring)];

test("Redis restarted empty: cities, ring, scripts, subscriptions and the relay come back with no tier restarted", async () => {
  for (const ring of rings())
    await waitUntil(async () => {
      await ring.refresh();
      return ring.nodes().length === 2;
    });
  const riderId = uniqueId("rider");
  const rider = startSteadyRider(ingest.grpc, await testToken(riderId, "rider", "london"));
  await rider.acceptedSince(Date.now());
  await waitUntil(async () => (await db.sismember(keys.cities(), "london")) === 1);

  // The ring must not reshuffle orders while the registry is empty: watch every ring throughout.
  let smallestRing = 2;
  const watchRings = setInterval(() => {
    for (const ring of rings()) smallestRing = Math.min(smallestRing, ring.nodes().length);
  }, 5);
  await db.set("written-before-the-restart", "1");
  await redis.kill();
  // While it is down the rider's pings are reported dropped, on a stream that stays open.
  await waitUntil(() => (rider.dropped.get("UNAVAILABLE") ?? 0) > 0, 5_000, "a ping dropped");
  await redis.restart();
  const backAt = Date.now();
  expect(await db.exists("written-before-the-restart")).toBe(0);

  // The rider's stream stayed open, and its pings are accepted again.
  await rider.acceptedSince(backAt);
  expect(rider.open()).toBe(true);
  // The stale-rider sweep walks geo:cities: the ingest puts its city back.
  await waitUntil(async () => (await db.sismember(keys.cities(), "london")) === 1, 5_000, "city");
  // Tracking nodes beat into the empty registry again.
  await waitUntil(async () => (await db.zcard(keys.trackingNodes())) === 2, 5_000, "registry");

  // A new order after the restart, through every tier: scripts, the rider's inbox subscription
  // (made before the restart), the ring, the tracking subscription, and the outbox relay.
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(db, { orderId, customerId });
  const offered = await gateway.call("/v1/dispatch/offers", {
    method: "POST",
    body: JSON.stringify({ orderId, riderId, city: "london", ttlMs: 30_000 }),
    as: { sub: "dispatcher-1", role: "dispatcher" },
  });
  expect(offered.status).toBe(201);
  await waitUntil(() => rider.offers.some((offer) => offer.orderId === orderId), 5_000, "offer");
  const token = rider.offers.find((offer) => offer.orderId === orderId)?.fencingToken ?? "";
  const accepted = await gateway.call(`/v1/rides/${orderId}`, {
    method: "PATCH",
    body: JSON.stringify({ action: "accept", token }),
    as: { sub: riderId, role: "rider" },
  });
  expect(accepted.status).toBe(200);
  const track = (await (
    await gateway.call(`/v1/orders/${orderId}/track`, { as: { sub: customerId, role: "customer" } })
  ).json()) as { url: string };
  const watcher = await openWatcher(
    `${track.url}?access_token=${await testToken(customerId, "customer")}`,
  );
  await waitUntil(
    () => watcher.frames.some((frame) => (frame as { type: string }).type === "position"),
    10_000,
    "the courier on the customer's map",
  );
  expect(watcher.frames[0]).toMatchObject({ type: "status", status: "ASSIGNED", riderId });
  await waitUntil(
    () =>
      broker.records.some((r) => r.topic === ORDER_EVENTS_TOPIC && r.key?.toString() === orderId),
    5_000,
    "the assignment relayed to order-events",
  );
  clearInterval(watchRings);
  expect(smallestRing).toBe(2);
  watcher.close();
  await rider.stop();
});
