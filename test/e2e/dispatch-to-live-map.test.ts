import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { pingTrack, useIngestOnRedis } from "../support/ingest";
import { seedOrder } from "../support/orders";
import { openPingStream } from "../support/ping-stream";
import { testToken, uniqueId } from "../support/tokens";
import { openWatcher, startTestTracking, type TestTrackingNode } from "../support/tracking";

// The whole flow across the tiers: dispatcher → offer down the rider's ingest
// stream → rider accepts at the gateway → the rider's pings reach the
// customer's live map on the owning tracking node.
const fixture = useIngestOnRedis();
let db: Redis;
let gateway: TestGateway;
let node: TestTrackingNode;

beforeAll(async () => {
  db = new Redis(fixture.redis.url);
  node = await startTestTracking({ REDIS_URL: fixture.redis.url });
  gateway = await startTestGateway({ REDIS_URL: fixture.redis.url });
});

afterAll(async () => {
  await gateway?.stop();
  await node?.stop();
  db?.disconnect();
});

test("offer, accept, and the courier appears on the customer's map", async () => {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(db, { orderId, customerId });
  const rider = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
  const [first, second] = pingTrack(2);
  if (!first || !second) throw new Error("unreachable");
  rider.send(first);
  await rider.next();
  // The inbox subscription is made as the stream opens; wait until Redis has it.
  while (
    Number(((await db.pubsub("NUMSUB", `rider:{${riderId}}:inbox`)) as [string, number])[1]) < 1
  )
    await Bun.sleep(10);

  const offered = await gateway.call("/v1/dispatch/offers", {
    method: "POST",
    body: JSON.stringify({ orderId, riderId, city: "london", ttlMs: 30_000 }),
    as: { sub: "dispatcher-1", role: "dispatcher" },
  });
  expect(offered.status).toBe(201);
  const pushed = await rider.next();
  if (pushed.event.case !== "offer") throw new Error(`expected an offer, got ${pushed.event.case}`);
  const token = pushed.event.value.fencingToken;
  expect(token).toBe(((await offered.json()) as { fencingToken: string }).fencingToken);

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
  await watcher.waitForFrames(2);
  expect(watcher.frames[0]).toMatchObject({ type: "status", status: "ASSIGNED", riderId });
  rider.send(second);
  await rider.next();
  await watcher.waitForFrames(3);
  expect(watcher.frames.at(-1)).toMatchObject({ type: "position", orderId, riderId, seq: 2 });
  await rider.finish();
  watcher.close();
});
