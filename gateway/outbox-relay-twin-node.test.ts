import { expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { keys, ORDER_PARTITIONS } from "../core/redis/keys";
import { type GatewayProcess, startGatewayProcess } from "../test/support/gateway-process";
import { useOutboxRelay } from "../test/support/outbox-relay";
import { uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";
import { ENTRY_HEADER, ORDER_EVENTS_TOPIC } from "./outbox-relay";

// Two real gateway processes started with the same GATEWAY_NODE_ID (a copied config).
const NODE_ID = "twin";
const ORDERS = 100;
const LEASE_MS = 3_000;

const fixture = useOutboxRelay("relay-twin-test");
const { children } = fixture;

const { leaseHolders } = fixture;

/** Partitions a gateway process says it relays (its edge_gateway_outbox_partitions_held). */
async function partitionsHeld(gateway: GatewayProcess): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return Number(
    /^edge_gateway_outbox_partitions_held(?:\{[^}]*\})? (\d+)$/m.exec(text)?.[1] ?? Number.NaN,
  );
}

/** Collects a process's stdout (JSON log lines) as it comes. */
function collectLogs(child: Subprocess): { msgs: string[]; done: Promise<void> } {
  const msgs: string[] = [];
  const done = (async () => {
    let rest = "";
    for await (const chunk of child.stdout as ReadableStream<Uint8Array>) {
      const lines = (rest + Buffer.from(chunk).toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines.filter(Boolean))
        msgs.push((JSON.parse(line) as { msg: string }).msg);
    }
  })();
  return { msgs, done };
}

test("two gateways with one GATEWAY_NODE_ID: each partition is relayed by one of them, no entry is sent twice", async () => {
  const gateways = await Promise.all(
    [0, 1].map(async () => {
      const started = await startGatewayProcess(
        {
          REDIS_URL: fixture.redis.url,
          KAFKA_BROKERS: fixture.broker.brokers,
          GATEWAY_NODE_ID: NODE_ID,
          OUTBOX_LEASE_MS: String(LEASE_MS),
          OUTBOX_RELAY_EVERY_MS: "20",
          LOG_LEVEL: "warn",
        },
        { stdout: "pipe" },
      );
      children.push(started.child);
      return { ...started, logs: collectLogs(started.child) };
    }),
  );
  await waitUntil(
    async () => (await leaseHolders()).every((holder) => holder !== null),
    10_000,
    "every partition leased",
  );
  // Each lease names the node id and the process holding it: one or two holders in all.
  const holders = await leaseHolders();
  for (const holder of holders) expect(holder).toStartWith(`${NODE_ID} `);
  expect(new Set(holders).size).toBeLessThanOrEqual(2);
  // Together they relay each partition once (each would report all 64 if both renewed one lease).
  const held = await Promise.all(gateways.map(partitionsHeld));
  expect((held[0] ?? 0) + (held[1] ?? 0)).toBeLessThanOrEqual(ORDER_PARTITIONS);

  const orders = Array.from({ length: ORDERS }, () => uniqueId("order"));
  for (const orderId of orders) {
    await fixture.changeOneOrder(orderId);
  }
  const emptied = async () => {
    const lengths = await Promise.all(
      Array.from({ length: ORDER_PARTITIONS }, (_, p) => fixture.db.xlen(keys.outboxPartition(p))),
    );
    return lengths.every((length) => length === 0);
  };
  await waitUntil(emptied, 15_000, "every outbox partition relayed");
  const after = await Promise.all(gateways.map(partitionsHeld));
  expect((after[0] ?? 0) + (after[1] ?? 0)).toBeLessThanOrEqual(ORDER_PARTITIONS);
  // Once a crashed predecessor's leases would have lapsed, the one left out tells the operator.
  await waitUntil(
    () =>
      gateways.some(({ logs }) =>
        logs.msgs.some((msg) => msg.startsWith("another gateway relays under")),
      ),
    LEASE_MS * 3,
    "a warning about the twin",
  );

  // Drained, each gives back its own leases (and only those), its passes finished.
  for (const { child } of gateways) child.kill("SIGTERM");
  for (const { child, logs } of gateways) {
    expect(await child.exited).toBe(0);
    await logs.done;
  }
  expect((await leaseHolders()).every((holder) => holder === null)).toBe(true);
  const sent = fixture.broker.records
    .filter((r) => r.topic === ORDER_EVENTS_TOPIC)
    .map((r) => r.headers[ENTRY_HEADER]?.toString());
  expect(sent).toHaveLength(ORDERS);
  expect(new Set(sent).size).toBe(ORDERS);
}, 30_000);
