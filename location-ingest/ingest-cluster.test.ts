import { afterAll, beforeAll, expect, test } from "bun:test";
import { Cluster, Redis } from "ioredis";
import { encodeRiderInboxMessage } from "../core/messages/rider-inbox";
import { parseStoredPosition } from "../core/position/position-forms";
import { keys } from "../core/redis/keys";
import { pingTrack, startTestIngest, type TestIngest } from "../test/support/ingest";
import { seedOrder, testOffer } from "../test/support/orders";
import { openPingStream } from "../test/support/ping-stream";
import { type RedisCluster, startRedisCluster } from "../test/support/redis-server";
import { testToken, uniqueId } from "../test/support/tokens";

let cluster: RedisCluster;
let ingest: TestIngest;
let db: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
  ingest = await startTestIngest({ REDIS_CLUSTER_NODES: cluster.nodesEnv });
  db = new Cluster(cluster.nodes);
});

afterAll(async () => {
  await ingest?.stop();
  db?.disconnect();
  await cluster?.stop();
});

/** A plain connection to the master that serves `key`'s slot. */
async function connectToOwner(key: string): Promise<Redis> {
  const slot = Number(await db.call("CLUSTER", "KEYSLOT", key));
  const ranges = (await db.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
  const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
  if (!owner) throw new Error(`no owner for slot ${slot}`);
  return new Redis(owner[1], owner[0]);
}

test("in cluster mode a city's keys share one slot and position events use sharded pub/sub", async () => {
  const slotOf = async (key: string) => Number(await db.call("CLUSTER", "KEYSLOT", key));
  const citySlots = await Promise.all(
    [
      keys.cityRiders("london"),
      keys.cityRidersSeen("london"),
      keys.locationLog("london"),
      keys.fence("london"),
    ].map(slotOf),
  );
  expect(new Set(citySlots).size).toBe(1);
  // Cities spread over the cluster rather than sharing a slot.
  expect(await slotOf(keys.cityRiders("paris"))).not.toBe(citySlots[0]);

  const riderId = uniqueId("rider");
  const orderId = uniqueId("order");
  await seedOrder(db, { orderId, customerId: "c1", riderId });

  const channel = keys.orderTrack(orderId);
  const sharded = await connectToOwner(channel);
  const shardedFrames: string[] = [];
  sharded.on("smessage", (_channel: string, message: string) => shardedFrames.push(message));
  await sharded.ssubscribe(channel);
  // A classic SUBSCRIBE on another node must see nothing: no cluster-wide broadcast.
  const classic = new Redis(cluster.nodes[0]?.port ?? 0, "127.0.0.1");
  const classicFrames: string[] = [];
  classic.on("message", (_channel: string, message: string) => classicFrames.push(message));
  await classic.subscribe(channel);

  const stream = openPingStream(ingest.grpc, await testToken(riderId, "rider", "london"));
  for (const ping of pingTrack(3)) {
    stream.send(ping);
    const response = await stream.next();
    expect(response.event.case === "ack" && response.event.value.dropped).toEqual([]);
  }

  const deadline = Date.now() + 3_000;
  while (shardedFrames.length < 3 && Date.now() < deadline) await Bun.sleep(10);
  expect(shardedFrames.map((frame) => JSON.parse(frame).position.seq)).toEqual(["1", "2", "3"]);
  expect(classicFrames).toEqual([]);
  expect(parseStoredPosition(await db.get(keys.riderPosition(riderId)))?.seq).toBe(3n);
  expect(await db.zscore(keys.cityRidersSeen("london"), riderId)).not.toBeNull();
  expect(await db.xlen(keys.locationLog("london"))).toBeGreaterThanOrEqual(3);

  // Offers reach the rider through its sharded inbox too.
  const inbox = await connectToOwner(keys.riderInbox(riderId));
  const subscribed = Date.now() + 3_000;
  while (
    Number(
      ((await inbox.call("PUBSUB", "SHARDNUMSUB", keys.riderInbox(riderId))) as unknown[])[1],
    ) < 1
  ) {
    if (Date.now() > subscribed) throw new Error("inbox never subscribed");
    await Bun.sleep(10);
  }
  await inbox.call(
    "SPUBLISH",
    keys.riderInbox(riderId),
    encodeRiderInboxMessage(testOffer(orderId)),
  );
  const response = await stream.next();
  expect(response.event.case === "offer" && response.event.value.fencingToken).toBe(`${orderId}:1`);
  await stream.finish();
  for (const client of [sharded, classic, inbox]) client.disconnect();
});
