import { beforeAll, expect, test } from "bun:test";
import { keys } from "../../core/redis/keys";
import { ORDER_EVENTS_TOPIC } from "../../gateway/outbox-relay";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { startTestIngest, type TestIngest } from "../support/ingest";
import { type KafkaBroker, startKafkaBroker } from "../support/kafka-broker";
import { offerAcceptAndWatch, seedOrder } from "../support/orders";
import { useRedisClient } from "../support/redis-connection";
import { startSteadyRider } from "../support/steady-rider";
import { testToken, uniqueId } from "../support/tokens";
import { startTestTracking, type TestTrackingNode } from "../support/tracking";
import { waitUntil } from "../support/wait";

// Redis restarts with nothing in it (no persistence) under running tiers:
// nothing is restarted, and everything that lives in Redis only because the
// tiers put it there comes back by itself.
const RING_TTL = { TRACKING_NODE_TTL_MS: "5000" };
let broker: KafkaBroker;
let ingest: TestIngest;
let nodes: TestTrackingNode[] = [];
let gateway: TestGateway;

const fixture = useRedisClient({
  stopFirst: async () => {
    await gateway?.stop();
    for (const node of nodes) await node.stop();
    await ingest?.stop();
    await broker?.stop();
  },
});

beforeAll(async () => {
  broker = await startKafkaBroker();
  const env = { REDIS_URL: fixture.redis.url };
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
  await waitUntil(async () => (await fixture.db.sismember(keys.cities(), "london")) === 1);

  // The ring must not reshuffle orders while the registry is empty: watch every ring throughout.
  let smallestRing = 2;
  const watchRings = setInterval(() => {
    for (const ring of rings()) smallestRing = Math.min(smallestRing, ring.nodes().length);
  }, 5);
  await fixture.db.set("written-before-the-restart", "1");
  await fixture.redis.kill();
  // While it is down the rider's pings are reported dropped, on a stream that stays open.
  await waitUntil(() => (rider.dropped.get("UNAVAILABLE") ?? 0) > 0, 5_000, "a ping dropped");
  await fixture.redis.restart();
  const backAt = Date.now();
  expect(await fixture.db.exists("written-before-the-restart")).toBe(0);

  // The rider's stream stayed open, and its pings are accepted again.
  await rider.acceptedSince(backAt);
  expect(rider.open()).toBe(true);
  // The stale-rider sweep walks geo:cities: the ingest puts its city back.
  await waitUntil(
    async () => (await fixture.db.sismember(keys.cities(), "london")) === 1,
    5_000,
    "city",
  );
  // Tracking nodes beat into the empty registry again.
  await waitUntil(
    async () => (await fixture.db.zcard(keys.trackingNodes())) === 2,
    5_000,
    "registry",
  );

  // A new order after the restart, through every tier: scripts, the rider's inbox subscription
  // (made before the restart), the ring, the tracking subscription, and the outbox relay.
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(fixture.db, { orderId, customerId });
  const watcher = await offerAcceptAndWatch(gateway, { orderId, riderId, customerId }, async () => {
    await waitUntil(() => rider.offers.some((offer) => offer.orderId === orderId), 5_000, "offer");
    return rider.offers.find((offer) => offer.orderId === orderId)?.fencingToken ?? "";
  });
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
