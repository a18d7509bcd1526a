import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import type { TrackingEvent } from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { startTestGateway, type TestGateway } from "../../test/support/gateway";
import { seedOrder } from "../../test/support/orders";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { testToken, uniqueId } from "../../test/support/tokens";
import { startTestTracking, type TestTrackingNode } from "../../test/support/tracking";
import { waitUntil } from "../../test/support/wait";
import { trackOrder } from "./track-order";

let redis: RedisServer;
let db: Redis;
let nodes: TestTrackingNode[];
let gateway: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  db = new Redis(redis.url);
  nodes = [
    await startTestTracking({ REDIS_URL: redis.url }),
    await startTestTracking({ REDIS_URL: redis.url }),
  ];
  gateway = await startTestGateway({ REDIS_URL: redis.url });
  for (const app of [gateway.app, ...nodes.map((n) => n.app)]) {
    await waitUntil(async () => {
      await app.ring.refresh();
      return app.ring.nodes().length === 2;
    });
  }
});

afterAll(async () => {
  await gateway?.stop();
  for (const node of nodes ?? []) await node.stop();
  db?.disconnect();
  await redis?.stop();
});

test("the example client finds the owner through the gateway, decodes protobuf frames, and follows a drain to the next node", async () => {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(db, { orderId, customerId, riderId: uniqueId("rider") });
  const events: TrackingEvent[] = [];
  const tracker = await trackOrder({
    gatewayUrl: gateway.url,
    orderId,
    token: await testToken(customerId, "customer"),
    onEvent: (event) => events.push(event),
    reconnectAfterMs: 50,
  });
  await waitUntil(() => events.length >= 1);
  expect(events[0]?.event.case === "status" && events[0].event.value.status).toBe("ASSIGNED");
  const owner = nodes.find((node) => node.app.ring.ownerOf(orderId)?.id === node.id);
  await owner?.stop();
  // Drained: `moved` to the other node, which sends the status again.
  await waitUntil(() => events.filter((e) => e.event.case === "status").length >= 2);
  expect(events.some((e) => e.event.case === "moved")).toBe(true);
  tracker.close();
});
