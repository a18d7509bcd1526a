// A relaying gateway's SIGTERM drain (KAFKA_BROKERS set) while its Redis or
// its Kafka hangs: real gateway and redis-server processes, the Kafka wire
// fixture. The drain ends by itself and exits 0; nothing is taken out of the
// outbox that Kafka did not acknowledge.
import { expect, test } from "bun:test";
import { keys } from "../core/redis/keys";
import { startGatewayProcess } from "../test/support/gateway-process";
import { ApiKey, type KafkaBroker, startKafkaBroker } from "../test/support/kafka-broker";
import { useOutboxRelay } from "../test/support/outbox-relay";
import { uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

const fixture = useOutboxRelay("relay-drain-test");

/**
 * The drain with no request under way is bounded at 4 s (the relay's stop, three 1 s
 * steps, and QUIT's 1 s); unbounded, it took ~10 s (Kafka hung) or was cut at 15 s (Redis
 * hung). Halfway: a loaded machine's scheduling does not fail it, the old drain does.
 */
const DRAIN_WITHIN_MS = 8_000;

/** A gateway relaying to `broker` that holds every partition and has relayed one change. */
async function relayingGateway(broker: KafkaBroker) {
  const nodeId = uniqueId("gw");
  const gateway = await startGatewayProcess({
    REDIS_URL: fixture.redis.url,
    KAFKA_BROKERS: broker.brokers,
    GATEWAY_NODE_ID: nodeId,
    OUTBOX_RELAY_EVERY_MS: "20",
  });
  fixture.children.push(gateway.child);
  await waitUntil(
    async () => (await fixture.leaseHolders()).every((h) => h?.startsWith(`${nodeId} `)),
    10_000,
    "the gateway holds every partition",
  );
  // Its producer is connected and knows the topic: the next send goes straight to Produce.
  const before = broker.records.length;
  await fixture.changeOneOrder(uniqueId("order"));
  await broker.waitForRecords(before + 1);
  return gateway;
}

test("Redis hangs: a relaying gateway's drain stops waiting on the relay's pass and lease give-back, exits 0", async () => {
  const gateway = await relayingGateway(fixture.broker);
  // Within OUTBOX_RELAY_EVERY_MS its next pass waits on Redis too: neither the pass nor the
  // lease give-back (nor QUIT) is ever answered.
  process.kill(fixture.redis.pid, "SIGSTOP");
  try {
    const started = Date.now();
    gateway.child.kill("SIGTERM");
    // The relay's stop waited for Redis without a deadline: the drain was cut at 15 s, exit 1.
    expect(await gateway.child.exited).toBe(0);
    // No request under way: the relay's stop (pass, leases, producer) and QUIT, each bounded.
    expect(Date.now() - started).toBeLessThan(DRAIN_WITHIN_MS);
  } finally {
    process.kill(fixture.redis.pid, "SIGCONT");
  }
}, 20_000);

test("Kafka hangs with a send under way: the drain gives the leases back, leaves the entry in the outbox, exits 0", async () => {
  const broker = await startKafkaBroker();
  try {
    const gateway = await relayingGateway(broker);
    broker.freeze();
    const orderId = uniqueId("order");
    await fixture.changeOneOrder(orderId);
    await waitUntil(() => broker.heldRequests.includes(ApiKey.produce), 5_000, "a held produce");
    const started = Date.now();
    gateway.child.kill("SIGTERM");
    expect(await gateway.child.exited).toBe(0);
    // kafkajs gives a hung Produce its request timeout (5 s) twice, and its disconnect
    // waits for it: the drain took ~10 s.
    expect(Date.now() - started).toBeLessThan(DRAIN_WITHIN_MS);
    // Never acknowledged, so never deleted: the next holder of its partition sends it.
    expect(await fixture.db.xlen(keys.orderOutbox(orderId))).toBe(1);
    // Redis answers: the leases were given back, so another gateway takes over at once.
    expect((await fixture.leaseHolders()).filter((holder) => holder !== null)).toEqual([]);
  } finally {
    await broker.stop();
  }
}, 20_000);
