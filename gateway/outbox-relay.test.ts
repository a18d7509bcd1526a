import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import pino from "pino";
import { Registry } from "prom-client";
import { keys, ORDER_PARTITIONS, orderPartition } from "../core/redis/keys";
import { holdLease } from "../core/redis/leases";
import { transitionOrder } from "../core/redis/order-scripts";
import { type KafkaBroker, startKafkaBroker } from "../test/support/kafka-broker";
import { orderOutboxEvents, seedOrder, trackingEventJson } from "../test/support/orders";
import { useRedisConnection } from "../test/support/redis-connection";
import { uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";
import { fairShare } from "./outbox-partition-leases";
import {
  ENTRY_HEADER,
  ORDER_EVENTS_TOPIC,
  type OutboxRelay,
  startOutboxRelay,
} from "./outbox-relay";

const fixture = useRedisConnection("relay-test");
const logger = pino({ level: "silent" });
const UNRELATED_KEYS = 50_000;
let broker: KafkaBroker;

beforeAll(async () => {
  broker = await startKafkaBroker();
  // Riders, geo sets, idempotency keys...: none of it may cost the relay anything.
  const { client } = fixture.connection;
  for (let from = 0; from < UNRELATED_KEYS; from += 5_000) {
    const pairs = Array.from({ length: 5_000 }, (_, i) => [`rider:{r${from + i}}:pos`, "x"]);
    await client.mset(...pairs.flat());
  }
});

afterAll(async () => {
  await broker?.stop();
});

beforeEach(async () => {
  const { client } = fixture.connection;
  const leases = Array.from({ length: ORDER_PARTITIONS }, (_, p) => keys.outboxLease(p));
  await client.del(keys.outboxRelays(), ...leases);
});

/** A relay whose loop only waits: the test drives relayOnce() (unless `everyMs` is short). */
const startRelay = (nodeId: string, timing = { everyMs: 60_000, leaseMs: 5_000 }) =>
  startOutboxRelay({
    connection: fixture.connection,
    brokers: [broker.brokers],
    nodeId,
    ...timing,
    registry: new Registry(),
    logger,
  });

/** An assigned order taken through READY and PICKED_UP: two outbox entries. */
async function twoChanges(): Promise<string> {
  const orderId = uniqueId("order");
  await seedOrder(fixture.connection.client, { orderId, customerId: "c", riderId: "r" });
  for (const [version, to, from] of [
    [2, "READY", "ASSIGNED"],
    [3, "PICKED_UP", "READY"],
  ] as const)
    await transitionOrder(fixture.connection, {
      orderId,
      expectedVersion: version,
      to,
      legalFrom: [from],
    });
  return orderId;
}

const eventsOf = (orderId: string) =>
  broker.records
    .filter((r) => r.topic === ORDER_EVENTS_TOPIC && r.key?.toString() === orderId)
    .map((r) => {
      // Each value is a TrackingEvent in proto3 JSON: {orderId, status: {status, version, riderId}}.
      const { status } = trackingEventJson(r.value?.toString() ?? "{}") as {
        status: { status: string; version: string };
      };
      return { status: status.status, version: Number(status.version) };
    });

const waiting = async (orderId: string) =>
  (await orderOutboxEvents(fixture.connection.client, orderId)).length;

async function scansSoFar(): Promise<number> {
  const stats = await fixture.connection.client.info("commandstats");
  return Number(/cmdstat_scan:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

test("changes reach order-events keyed by order, in order, and leave their partition's outbox; nothing scans the keyspace", async () => {
  const scansBefore = await scansSoFar();
  const orders = await Promise.all(Array.from({ length: 20 }, twoChanges));
  expect(await waiting(orders[0] ?? "")).toBe(2);
  const relay = startRelay("g1");
  try {
    expect(await relay.relayOnce()).toBeGreaterThanOrEqual(40);
    expect(relay.partitions()).toHaveLength(ORDER_PARTITIONS);
  } finally {
    await relay.stop();
  }
  for (const orderId of orders) {
    expect(eventsOf(orderId).map((e) => [e.status, e.version])).toEqual([
      ["READY", 3],
      ["PICKED_UP", 4],
    ]);
    expect(await waiting(orderId)).toBe(0);
    // Each record names its outbox entry, so a consumer can drop a duplicate.
    const entries = broker.records
      .filter((r) => r.key?.toString() === orderId)
      .map((r) => r.headers[ENTRY_HEADER]?.toString() ?? "");
    expect(new Set(entries).size).toBe(2);
    for (const entry of entries) expect(entry).toMatch(`${orderPartition(orderId)}/`);
  }
  expect(await scansSoFar()).toBe(scansBefore);
});

test("a relay that fails mid-way (broker gone) loses nothing: the entries wait and go out after", async () => {
  const orderId = await twoChanges();
  const relay = startRelay("g1");
  try {
    await broker.stop();
    await expect(relay.relayOnce()).rejects.toThrow();
    expect(await waiting(orderId)).toBe(2);
    await broker.restart();
    await relay.relayOnce();
  } finally {
    await relay.stop();
  }
  expect(eventsOf(orderId).map((e) => e.version)).toEqual([3, 4]);
  expect(await waiting(orderId)).toBe(0);
});

test("entries waiting per partition: a gauge read on the relay's pass (XLEN only for a partition with more than a batch), dropped when the relay stops", async () => {
  const { client } = fixture.connection;
  const registry = new Registry();
  const relay = startOutboxRelay({
    connection: fixture.connection,
    brokers: [broker.brokers],
    nodeId: "g1",
    everyMs: 60_000,
    leaseMs: 5_000,
    registry,
    logger,
  });
  const gauge = async () => {
    const metric = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === "edge_gateway_outbox_entries",
    ) as { values: { value: number; labels: { partition?: string } }[] } | undefined;
    return new Map(metric?.values.map((v) => [Number(v.labels.partition), v.value]));
  };
  const xlenCalls = async () =>
    Number(/cmdstat_xlen:calls=(\d+)/.exec(await client.info("commandstats"))?.[1] ?? 0);
  // Kafka away: one partition piles up past a pass's batch, another holds one change.
  const [busy, quiet] = [7, 40];
  try {
    await relay.relayOnce(); // empties what earlier tests left
    await broker.stop();
    for (let i = 0; i < 300; i++)
      await client.xadd(keys.outboxPartition(busy), "*", "event", `{"orderId":"o-${i}"}`);
    await client.xadd(keys.outboxPartition(quiet), "*", "event", `{"orderId":"q"}`);
    const xlenBefore = await xlenCalls();
    await expect(relay.relayOnce()).rejects.toThrow();
    const waitingNow = await gauge();
    expect(waitingNow.size).toBe(ORDER_PARTITIONS);
    expect([waitingNow.get(busy), waitingNow.get(quiet), waitingNow.get(0)]).toEqual([300, 1, 0]);
    expect((await xlenCalls()) - xlenBefore).toBe(1);
    // Kafka back: the gauge falls with the backlog, to 0 once it is gone.
    await broker.restart();
    while ((await client.xlen(keys.outboxPartition(busy))) > 0) await relay.relayOnce();
    await relay.relayOnce();
    expect([...(await gauge()).values()].every((n) => n === 0)).toBe(true);
  } finally {
    await relay.stop();
  }
  expect((await gauge()).size).toBe(0);
});

test("a dead gateway's partition is taken over when its lease runs out, its unsent entries first", async () => {
  const { client } = fixture.connection;
  const first = await twoChanges();
  const partition = orderPartition(first);
  // The dead gateway held the partition (it read these entries and died before deleting them).
  expect(await holdLease(client, keys.outboxLease(partition), "dead-gateway", 400)).toBe("taken");
  const relay = startRelay("g1", { everyMs: 60_000, leaseMs: 600 });
  try {
    await relay.relayOnce();
    expect(relay.partitions()).not.toContain(partition);
    expect(await waiting(first)).toBe(2);
    await waitUntil(async () => (await client.exists(keys.outboxLease(partition))) === 0);
    // A newer change of the same order, written before the takeover, must follow the old ones.
    await transitionOrder(fixture.connection, {
      orderId: first,
      expectedVersion: 4,
      to: "DELIVERED",
      legalFrom: ["PICKED_UP"],
    });
    await relay.relayOnce(); // first rebalance after the lease ran out
    await relay.relayOnce();
    expect(relay.partitions()).toContain(partition);
  } finally {
    await relay.stop();
  }
  expect(eventsOf(first).map((e) => e.version)).toEqual([3, 4, 5]);
});

test("fair shares: every partition has one owner, none more than its share, and few move when a node joins", () => {
  const three = ["g1", "g2", "g3"];
  const shares = three.map((node) => fairShare(three, ORDER_PARTITIONS, node));
  expect(shares.flat().sort((a, b) => a - b)).toEqual(
    Array.from({ length: ORDER_PARTITIONS }, (_, p) => p),
  );
  for (const share of shares)
    expect(share.length).toBeLessThanOrEqual(Math.ceil(ORDER_PARTITIONS / 3));
  const four = [...three, "g4"];
  const moved = three.reduce((sum, node, index) => {
    const kept = new Set(fairShare(four, ORDER_PARTITIONS, node));
    return sum + (shares[index] ?? []).filter((p) => !kept.has(p)).length;
  }, 0);
  // Ideal: a quarter of the partitions move to the new node; far from all of them.
  expect(moved).toBeLessThan(ORDER_PARTITIONS / 2);
  expect(fairShare(three, ORDER_PARTITIONS, "not-live")).toEqual([]);
});

test("several gateways relay at once, each a fair share, rebalanced when one leaves and one joins", async () => {
  const { client } = fixture.connection;
  const timing = { everyMs: 20, leaseMs: 600 };
  const relays = new Map<string, OutboxRelay>(
    ["ga", "gb", "gc"].map((id) => [id, startRelay(id, timing)]),
  );
  // A lease's holder is `<node id> <instance token>`.
  const holders = async () =>
    (
      await client.mget(...Array.from({ length: ORDER_PARTITIONS }, (_, p) => keys.outboxLease(p)))
    ).map((holder) => holder?.split(" ")[0] ?? null);
  const sharedBy = async (nodes: string[]) => {
    const owners = await holders();
    const cap = Math.ceil(ORDER_PARTITIONS / nodes.length);
    return (
      owners.every((owner) => owner !== null && nodes.includes(owner)) &&
      nodes.every((node) => owners.filter((owner) => owner === node).length <= cap)
    );
  };
  try {
    await waitUntil(() => sharedBy(["ga", "gb", "gc"]), 10_000, "three-way share");
    const orders = await Promise.all(Array.from({ length: 30 }, twoChanges));
    await waitUntil(async () => (await Promise.all(orders.map(waiting))).every((n) => n === 0));
    for (const orderId of orders) expect(eventsOf(orderId).map((e) => e.version)).toEqual([3, 4]);

    await relays.get("gb")?.stop();
    relays.delete("gb");
    await waitUntil(() => sharedBy(["ga", "gc"]), 10_000, "two-way share after a drain");
    relays.set("gd", startRelay("gd", timing));
    await waitUntil(() => sharedBy(["ga", "gc", "gd"]), 10_000, "three-way share after a join");
  } finally {
    await Promise.all([...relays.values()].map((relay) => relay.stop()));
  }
});
