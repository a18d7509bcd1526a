// The outbox partition leases against a real redis-server, through a proxy
// that can hold the client's commands back (a Redis slow to answer).
import { afterAll, expect, test } from "bun:test";
import pino from "pino";
import { connectRedis } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { startFreezingProxy } from "../test/support/freezing-proxy";
import { useRedisClient } from "../test/support/redis-connection";
import { uniqueId } from "../test/support/tokens";
import { createPartitionLeases } from "./outbox-partition-leases";

const fixture = useRedisClient();
const PARTITIONS = 4;
const leaseHolders = () =>
  Promise.all(Array.from({ length: PARTITIONS }, (_, p) => fixture.db.get(keys.outboxLease(p))));

const closing: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of closing.reverse()) await close();
});

test("a rebalance still waiting on Redis when the leases are given back takes none of them again", async () => {
  const proxy = await startFreezingProxy(fixture.redis.port);
  closing.push(() => proxy.close());
  const connection = await connectRedis(
    { mode: "standalone", url: `redis://127.0.0.1:${proxy.port}` },
    "leases-test",
    pino({ level: "silent" }),
  );
  closing.push(() => connection.close());
  const nodeId = uniqueId("gw");
  const leases = createPartitionLeases({
    client: connection.client,
    nodeId,
    leaseMs: 30_000,
    logger: pino({ level: "silent" }),
    partitions: PARTITIONS,
  });
  await leases.rebalance();
  expect(leases.held(0)).toHaveLength(PARTITIONS);

  // Seven long-gone relays: the next rebalance's clean-up answers ":7", and from that
  // answer on the proxy holds the client's commands back, so the rebalance waits on its
  // read of the live relays while the gateway drains and gives its leases back.
  await fixture.db.zadd(
    keys.outboxRelays(),
    ...Array.from({ length: 7 }, (_, i) => [0, `gone-${i}`]).flat(),
  );
  const held = proxy.holdRequestsAfter(":7\r\n");
  const rebalancing = leases.rebalance();
  await held.holding;
  const leaving = leases.leave();
  // Redis answers, in order: the live relays (this node among them), then the give-back.
  held.release();
  await Promise.all([rebalancing, leaving]);

  // The rebalance went on to hold its share after the give-back: the partitions stayed
  // this gateway's until they lapsed (OUTBOX_LEASE_MS), though it was exiting.
  expect(await leaseHolders()).toEqual(Array(PARTITIONS).fill(null));
  expect(leases.held(0)).toEqual([]);
  expect(await fixture.db.zscore(keys.outboxRelays(), nodeId)).toBeNull();
});
