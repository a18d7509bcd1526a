// A tracking node on a 3-master Redis Cluster: sharded subscriptions, and
// what a watcher sees when one master's subscriber connection drops while
// the cluster stays ready (ioredis re-subscribes it without a word).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Cluster, Redis } from "ioredis";
import { statusEventJson } from "../core/messages/tracking-events";
import { keys } from "../core/redis/keys";
import { seedOrder } from "../test/support/orders";
import { positionEvent } from "../test/support/positions";
import { type RedisCluster, startRedisCluster } from "../test/support/redis-server";
import { testToken, uniqueId } from "../test/support/tokens";
import { openWatcher, startTestTracking, type TestTrackingNode } from "../test/support/tracking";
import { waitUntil } from "../test/support/wait";

let cluster: RedisCluster;
let clusterDb: Cluster;
let node: TestTrackingNode;
beforeAll(async () => {
  cluster = await startRedisCluster();
  clusterDb = new Cluster(cluster.nodes);
  node = await startTestTracking({ REDIS_CLUSTER_NODES: cluster.nodesEnv });
}, 30_000);
afterAll(async () => {
  await node?.stop();
  clusterDb?.disconnect();
  await cluster?.stop();
});

/** A watcher of a newly seeded order with a rider, once its first frame (the status) is in. */
async function watchedOrder() {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(clusterDb, { orderId, customerId, riderId });
  const watcher = await openWatcher(
    `${node.url}/v1/orders/${orderId}/track?access_token=${await testToken(customerId, "customer")}`,
  );
  await watcher.waitForFrames(1);
  return { orderId, riderId, watcher };
}

test("in cluster mode the node subscribes with SSUBSCRIBE and gets the shard's SPUBLISH", async () => {
  const { orderId, riderId, watcher } = await watchedOrder();
  const channel = keys.orderTrack(orderId);
  await waitUntil(
    async () =>
      Number(((await clusterDb.call("PUBSUB", "SHARDNUMSUB", channel)) as unknown[])[1]) === 1,
  );
  await clusterDb.call("SPUBLISH", channel, positionEvent(orderId, riderId, 5));
  await watcher.waitForFrames(2);
  expect(watcher.frames[1]).toMatchObject({ type: "position", seq: 5 });
  watcher.close();
});

test("the subscriber connection to the order's master dropped (the cluster stays ready): the end published meanwhile is missed, read again, and still closes the watcher", async () => {
  const { orderId, watcher } = await watchedOrder();
  const channel = keys.orderTrack(orderId);
  const master = new Redis(await cluster.masterOf(channel), "127.0.0.1");
  try {
    // In one round trip, so the end is published while the node holds no subscription to it.
    const replies = await master
      .pipeline()
      .call("CLIENT", "KILL", "TYPE", "pubsub")
      .hset(keys.order(orderId), { status: "CANCELLED", version: "3" })
      .spublish(channel, statusEventJson(orderId, { status: "CANCELLED", version: 3 }))
      .exec();
    expect(replies?.map(([error, reply]) => error ?? reply)).toEqual([1, 0, 0]);
    expect(await watcher.closed).toEqual({ code: 4410, reason: "order ended" });
    expect(watcher.frames.at(-1)).toMatchObject({ type: "status", status: "CANCELLED" });
  } finally {
    master.disconnect();
  }
});
