import { beforeAll, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { pingTrack, useIngestOnRedis } from "../support/ingest";
import { offerAcceptAndWatch, seedOrder } from "../support/orders";
import { openPingStream } from "../support/ping-stream";
import { testToken, uniqueId } from "../support/tokens";
import { startTestTracking, type TestTrackingNode } from "../support/tracking";

// The whole flow across the tiers: dispatcher → offer down the rider's ingest
// stream → rider accepts at the gateway → the rider's pings reach the
// customer's live map on the owning tracking node.
const fixture = useIngestOnRedis(
  {},
  {
    stopFirst: async () => {
      await gateway?.stop();
      await node?.stop();
    },
  },
);
let gateway: TestGateway;
let node: TestTrackingNode;

beforeAll(async () => {
  node = await startTestTracking({ REDIS_URL: fixture.redis.url });
  gateway = await startTestGateway({ REDIS_URL: fixture.redis.url });
});

test("offer, accept, and the courier appears on the customer's map", async () => {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.db, { orderId, customerId });
  const rider = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
  const [first, second] = pingTrack(2);
  if (!first || !second) throw new Error("unreachable");
  rider.send(first);
  await rider.next();
  // The inbox subscription is made as the stream opens; wait until Redis has it.
  while (
    Number(
      ((await fixture.db.pubsub("NUMSUB", `rider:{${riderId}}:inbox`)) as [string, number])[1],
    ) < 1
  )
    await Bun.sleep(10);

  const watcher = await offerAcceptAndWatch(
    gateway,
    { orderId, riderId, customerId },
    async ({ fencingToken }) => {
      const pushed = await rider.next();
      if (pushed.event.case !== "offer")
        throw new Error(`expected an offer, got ${pushed.event.case}`);
      // The rider's app is pushed the very token the dispatcher was given.
      expect(pushed.event.value.fencingToken).toBe(fencingToken);
      return pushed.event.value.fencingToken;
    },
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
