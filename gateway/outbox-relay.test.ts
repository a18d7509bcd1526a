import { afterAll, beforeAll, expect, test } from "bun:test";
import pino from "pino";
import { keys } from "../core/redis/keys";
import { transitionOrder } from "../core/redis/order-scripts";
import { type KafkaBroker, startKafkaBroker } from "../test/support/kafka-broker";
import { seedOrder } from "../test/support/orders";
import { useRedisConnection } from "../test/support/redis-connection";
import { uniqueId } from "../test/support/tokens";
import { ORDER_EVENTS_TOPIC, startOutboxRelay } from "./outbox-relay";

const fixture = useRedisConnection("relay-test");
const logger = pino({ level: "silent" });
let broker: KafkaBroker;

beforeAll(async () => {
  broker = await startKafkaBroker();
});

afterAll(async () => {
  await broker?.stop();
});

/** A relay that only runs when a test calls relayOnce(). */
const startRelay = () =>
  startOutboxRelay({
    connection: fixture.connection,
    brokers: [broker.brokers],
    nodeId: "g1",
    everyMs: 60_000,
    logger,
  });

/** An assigned order taken through READY and PICKED_UP: two outbox entries. */
async function twoChanges(): Promise<string> {
  const orderId = uniqueId("order");
  await seedOrder(fixture.connection.client, { orderId, customerId: "c", riderId: "r" });
  await transitionOrder(fixture.connection, {
    orderId,
    expectedVersion: 2,
    to: "READY",
    legalFrom: ["ASSIGNED"],
  });
  await transitionOrder(fixture.connection, {
    orderId,
    expectedVersion: 3,
    to: "PICKED_UP",
    legalFrom: ["READY"],
  });
  return orderId;
}

const eventsOf = (orderId: string) =>
  broker.records
    .filter((r) => r.topic === ORDER_EVENTS_TOPIC && r.key?.toString() === orderId)
    .map((r) => JSON.parse(r.value?.toString() ?? "{}") as { status: string; version: number });

test("status changes reach order-events keyed by order, in order, and their outbox is removed", async () => {
  const orders = [await twoChanges(), await twoChanges()];
  expect(await fixture.connection.client.xlen(keys.orderOutbox(orders[0] ?? ""))).toBe(2);
  const relay = startRelay();
  try {
    expect(await relay.relayOnce()).toBeGreaterThanOrEqual(4);
  } finally {
    await relay.stop();
  }
  for (const orderId of orders) {
    expect(eventsOf(orderId).map((e) => [e.status, e.version])).toEqual([
      ["READY", 3],
      ["PICKED_UP", 4],
    ]);
    expect(await fixture.connection.client.exists(keys.orderOutbox(orderId))).toBe(0);
  }
});

test("a relay that fails mid-way (broker gone) loses nothing: the entries wait and go out after", async () => {
  const orderId = await twoChanges();
  const relay = startRelay();
  try {
    await broker.stop();
    await expect(relay.relayOnce()).rejects.toThrow();
    expect(await fixture.connection.client.xlen(keys.orderOutbox(orderId))).toBe(2);
    await broker.restart();
    await relay.relayOnce();
  } finally {
    await relay.stop();
  }
  expect(eventsOf(orderId).map((e) => e.version)).toEqual([3, 4]);
  expect(await fixture.connection.client.exists(keys.orderOutbox(orderId))).toBe(0);
});

test("only the gateway holding the relay lock relays", async () => {
  const orderId = await twoChanges();
  await fixture.connection.client.set(keys.outboxRelayLock(), "another-gateway", "PX", 60_000);
  const relay = startRelay();
  try {
    expect(await relay.relayOnce()).toBe(0);
    expect(await fixture.connection.client.xlen(keys.orderOutbox(orderId))).toBe(2);
  } finally {
    await relay.stop();
    await fixture.connection.client.del(keys.outboxRelayLock());
  }
});
