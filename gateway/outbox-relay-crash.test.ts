import { expect, test } from "bun:test";
import { keys, ORDER_PARTITIONS } from "../core/redis/keys";
import { transitionOrder } from "../core/redis/order-scripts";
import { startGatewayProcess } from "../test/support/gateway-process";
import { seedOrder, trackingEventJson } from "../test/support/orders";
import { useOutboxRelay } from "../test/support/outbox-relay";
import { uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";
import { ENTRY_HEADER, ORDER_EVENTS_TOPIC } from "./outbox-relay";

// Three real gateway processes relay the outbox; one is killed with -9 while changes flow.
const ORDERS = 150;
const STEPS = [
  ["READY", "ASSIGNED"],
  ["PICKED_UP", "READY"],
  ["DELIVERED", "PICKED_UP"],
] as const;
const LEASE_MS = 1_000;

const fixture = useOutboxRelay("relay-crash-test");
const { children } = fixture;

/** Each partition's relaying node id (a lease's holder is `<node id> <instance token>`). */
const leaseHolders = async () =>
  (await fixture.leaseHolders()).map((holder) => holder?.split(" ")[0] ?? null);

test("kill -9 of one of three relaying gateways: its partitions are taken over, every change reaches Kafka, never a newer one before an older", async () => {
  const gateways = await Promise.all(
    ["ga", "gb", "gc"].map(async (id) => {
      const started = await startGatewayProcess({
        REDIS_URL: fixture.redis.url,
        KAFKA_BROKERS: fixture.broker.brokers,
        GATEWAY_NODE_ID: id,
        OUTBOX_LEASE_MS: String(LEASE_MS),
        OUTBOX_RELAY_EVERY_MS: "20",
      });
      children.push(started.child);
      return { id, ...started };
    }),
  );
  await waitUntil(
    async () => new Set(await leaseHolders()).size === 3,
    10_000,
    "the three gateways share the partitions",
  );
  const victim = gateways[1];
  if (!victim) throw new Error("unreachable");

  const orders = Array.from({ length: ORDERS }, () => uniqueId("order"));
  for (const orderId of orders)
    await seedOrder(fixture.db, { orderId, customerId: "c", riderId: "r" });
  // Each order steps READY → PICKED_UP → DELIVERED; the kill lands mid-way.
  let killedAt = 0;
  for (const [step, [to, from]] of STEPS.entries()) {
    for (const [index, orderId] of orders.entries()) {
      await transitionOrder(fixture.connection, {
        orderId,
        expectedVersion: 2 + step,
        to,
        legalFrom: [from],
      });
      if (step === 1 && index === ORDERS / 2) {
        victim.child.kill(9);
        await victim.child.exited;
        killedAt = performance.now();
      }
      if (index % 10 === 0) await Bun.sleep(5);
    }
  }

  const emptied = async () => {
    const lengths = await Promise.all(
      Array.from({ length: ORDER_PARTITIONS }, (_, p) => fixture.db.xlen(keys.outboxPartition(p))),
    );
    return lengths.every((length) => length === 0);
  };
  await waitUntil(emptied, 15_000, "every outbox partition relayed");
  const takenOverMs = performance.now() - killedAt;
  await waitUntil(
    async () => (await leaseHolders()).every((holder) => holder === "ga" || holder === "gc"),
    5_000,
    "the survivors hold every partition",
  );

  let duplicates = 0;
  for (const orderId of orders) {
    const records = fixture.broker.records.filter(
      (r) => r.topic === ORDER_EVENTS_TOPIC && r.key?.toString() === orderId,
    );
    const versions = records.map((r) =>
      Number(
        (trackingEventJson(r.value?.toString() ?? "{}") as { status: { version: string } }).status
          .version,
      ),
    );
    // Each version arrives (at least once), and a version first seen is never older than one seen before it.
    const firstSeen = versions.filter((version, index) => versions.indexOf(version) === index);
    expect(firstSeen).toEqual([3, 4, 5]);
    // A duplicate names the same outbox entry as the original.
    const entries = new Set(records.map((r) => r.headers[ENTRY_HEADER]?.toString()));
    expect(entries.size).toBe(3);
    duplicates += versions.length - firstSeen.length;
  }
  console.log(
    `relay kill -9: ${ORDERS * STEPS.length} changes, all relayed ${Math.round(takenOverMs)} ms after the kill (lease ${LEASE_MS} ms), ${duplicates} sent twice`,
  );
});
