import type { Producer } from "kafkajs";
import type { Logger } from "pino";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { createKafkaProducer } from "../core/kafka/kafka-producer";
import { settleWithin } from "../core/lifecycle/settle-within";
import { DRAIN_STEP_WAIT_MS } from "../core/lifecycle/shutdown";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { createPartitionLeases } from "./outbox-partition-leases";

export const ORDER_EVENTS_TOPIC = "order-events";
/**
 * Header naming the outbox entry a record came from (`<partition>/<stream id>`):
 * the same for a record sent twice, so a consumer can drop the duplicate.
 */
export const ENTRY_HEADER = "edge-outbox-entry";
/**
 * Entries one pass sends at most, shared among the held partitions (kafkajs
 * encodes a produce request in time that grows faster than its size: 1,000
 * records ≈ 0.1 s, 16,000 ≈ 3 s here), and the least any partition gets.
 */
const PASS_ENTRIES = 2_048;
const MIN_PARTITION_BATCH = 32;
/** Lag buckets (s): from a healthy relay's tens of milliseconds to a Kafka outage's minutes. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

function relayMetrics(registry: Registry) {
  const registers = [registry];
  return {
    lag: new Histogram({
      name: "edge_gateway_outbox_relay_lag_seconds",
      help: "From an order change's outbox entry being written to Kafka acknowledging it",
      buckets: LAG_BUCKETS,
      registers,
    }),
    oldest: new Gauge({
      name: "edge_gateway_outbox_oldest_entry_seconds",
      help: "Age of the oldest entry waiting in the outbox partitions this gateway relays (last pass)",
      registers,
    }),
    entries: new Gauge({
      name: "edge_gateway_outbox_entries",
      help: "Entries waiting in each outbox partition this gateway relays (XLEN at the last pass, before sending)",
      labelNames: ["partition"],
      registers,
    }),
    relayed: new Counter({
      name: "edge_gateway_outbox_relayed_total",
      help: "Outbox entries produced to Kafka order-events and removed",
      registers,
    }),
    partitions: new Gauge({
      name: "edge_gateway_outbox_partitions_held",
      help: "Outbox partitions this gateway holds the lease of",
      registers,
    }),
  };
}

/** The ms part of a stream entry id (`<ms>-<seq>`): when Redis appended it. */
const appendedAtMs = (id: string) => Number(id.slice(0, id.indexOf("-")));

export interface OutboxRelay {
  /** One rebalance (when due) and one pass over the held partitions; resolves to entries relayed. */
  relayOnce(): Promise<number>;
  /** Partitions this gateway holds right now. */
  partitions(): number[];
  /**
   * Stops after the pass in progress, gives the leases back, disconnects;
   * each step waits at most DRAIN_STEP_WAIT_MS (3 in all: the gateway's cut counts them).
   * A pass left behind takes no lease and sets no gauge once stop() has begun, so
   * the leases given back stay given back (it still deletes what Kafka acked).
   */
  stop(): Promise<void>;
}

/**
 * Moves order changes from the partition outboxes (`outbox:{p<n>}`, each
 * entry written by the same script as the change) to Kafka `order-events`,
 * keyed by order id. The partitions are shared among the gateways by lease
 * (outbox-partition-leases.ts), so its cost per pass is one read per held
 * partition plus the entries to move, whatever else Redis holds.
 *
 * At least once, in order per order: a partition is read from its oldest
 * entry, produced in stream order, and its entries are deleted (by id)
 * only after the broker's ack. Whatever a relay read and did not delete
 * (it failed, or died) is still at the head of the stream for the next
 * holder of the lease, ahead of newer entries. A gateway that stalls past
 * its lease can send a batch its successor sends too: a duplicate, never a
 * loss; events carry the order's version to fold them.
 */
export function startOutboxRelay(options: {
  connection: RedisConnection;
  brokers: string[];
  nodeId: string;
  everyMs: number;
  leaseMs: number;
  registry: Registry;
  logger: Logger;
}): OutboxRelay {
  const { connection, nodeId, everyMs, leaseMs, logger } = options;
  const { client } = connection;
  const metrics = relayMetrics(options.registry);
  const producer: Producer = createKafkaProducer(options.brokers, "delivery-edge-outbox-relay");
  const leases = createPartitionLeases({ client, nodeId, leaseMs, logger });
  const busyEveryMs = Math.max(5, Math.round(everyMs / 5));
  let connected = false;
  /** Set by stop(): a pass still waiting on Redis or Kafka then touches neither leases nor gauges. */
  let stopped = false;
  let rebalanceAt = 0;
  /** Whether the last pass left entries behind (a partition gave a full batch). */
  let more = false;
  /** Whether the last pass moved anything: while changes flow, passes come faster. */
  let busy = false;

  async function relayOnce(): Promise<number> {
    more = false;
    busy = false;
    if (stopped || !connection.isReady()) return 0;
    if (Date.now() >= rebalanceAt) {
      await leases.rebalance();
      rebalanceAt = Date.now() + leaseMs / 3;
    }
    // Past each wait: once stopped, the gauges stay as stop() reset them.
    if (stopped) return 0;
    // A pass must end well inside the lease: skip partitions whose lease is about to run out.
    const partitions = leases.held(leaseMs / 2);
    metrics.partitions.set(partitions.length);
    const batch = Math.max(MIN_PARTITION_BATCH, Math.floor(PASS_ENTRIES / partitions.length));
    const batches = await Promise.all(
      partitions.map((partition) =>
        client.xrange(keys.outboxPartition(partition), "-", "+", "COUNT", batch),
      ),
    );
    if (stopped) return 0;
    const readAt = Date.now();
    const first = batches.flatMap((entries) => (entries[0] ? [appendedAtMs(entries[0][0])] : []));
    metrics.oldest.set(first.length > 0 ? (readAt - Math.min(...first)) / 1000 : 0);
    await countEntries(partitions, batches, batch);
    if (stopped) return 0;
    const entries = batches.flat();
    if (entries.length === 0) return 0;
    more = batches.some((entries) => entries.length === batch);
    busy = true;

    if (!connected) {
      await producer.connect();
      connected = true;
    }
    await producer.send({
      topic: ORDER_EVENTS_TOPIC,
      acks: -1,
      messages: batches.flatMap((batch, index) =>
        batch.map(([id, fields]) => {
          const payload = fields[fields.indexOf("event") + 1] ?? "{}";
          const entry = `${partitions[index]}/${id}`;
          return { key: orderIdOf(payload), value: payload, headers: { [ENTRY_HEADER]: entry } };
        }),
      ),
    });
    const ackedAt = Date.now();
    // Even once stopped: Kafka has them, and deleting them spares the next holder a duplicate.
    await Promise.all(
      batches.map((batch, index) =>
        batch.length > 0
          ? client.xdel(keys.outboxPartition(partitions[index] ?? 0), ...batch.map(([id]) => id))
          : undefined,
      ),
    );
    for (const [id] of entries) metrics.lag.observe((ackedAt - appendedAtMs(id)) / 1000);
    metrics.relayed.inc(entries.length);
    return entries.length;
  }

  /** Partitions with a series in the entries gauge (dropped when another gateway relays them). */
  const counted = new Set<number>();

  /**
   * Sets the entries gauge of the partitions just read. A partition that
   * gave less than a full batch gave all it holds; only a full one costs an
   * XLEN (O(1)), so a healthy relay pays nothing and one behind Kafka pays
   * one small read per partition per pass.
   */
  async function countEntries(
    partitions: number[],
    batches: readonly unknown[][],
    batch: number,
  ): Promise<void> {
    const lengths = await Promise.all(
      partitions.map((partition, index) => {
        const read = batches[index]?.length ?? 0;
        return read < batch ? read : client.xlen(keys.outboxPartition(partition));
      }),
    );
    if (stopped) return;
    const held = new Set(leases.held(0));
    for (const partition of counted) {
      if (held.has(partition)) continue;
      metrics.entries.remove(String(partition));
      counted.delete(partition);
    }
    partitions.forEach((partition, index) => {
      metrics.entries.set({ partition: String(partition) }, lengths[index] ?? 0);
      counted.add(partition);
    });
  }

  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function run(): Promise<void> {
    let failing = false;
    // The first pass waits one interval too, so a caller may drive relayOnce() itself.
    await pause(everyMs);
    while (!stopped) {
      try {
        await relayOnce();
        if (failing) logger.info("outbox relay recovered");
        failing = false;
      } catch (error) {
        if (!failing)
          logger.warn({ err: error }, "outbox relay failed; entries stay until the next pass");
        failing = true;
        connected = false;
        more = false;
        busy = false;
      }
      // A full batch means more is waiting: go again at once; after a quiet pass, wait longer.
      if (!more && !stopped) await pause(busy ? busyEveryMs : everyMs);
    }
  }
  const running = run();

  return {
    relayOnce,
    partitions: () => leases.held(0),
    async stop() {
      stopped = true;
      wake?.();
      // A pass left waiting on a hung Redis or broker deletes nothing it has not seen acked:
      // its entries stay at the head of their streams for the next holder (a duplicate at worst).
      const passEnded = await settleWithin(
        running.then(() => true),
        DRAIN_STEP_WAIT_MS,
        false,
      );
      if (!passEnded) logger.warn("outbox relay: the pass under way did not end in time");
      // Giving the leases back only lets another gateway take over at once: they lapse by
      // themselves after OUTBOX_LEASE_MS, so a Redis that hangs is not waited for.
      const left = leases.leave().then(
        () => true,
        (error: unknown) => {
          logger.warn({ err: error }, "outbox leases not given back; they lapse by themselves");
          return true;
        },
      );
      if (!(await settleWithin(left, DRAIN_STEP_WAIT_MS, false)))
        logger.warn("outbox leases not given back in time; they lapse by themselves");
      metrics.partitions.set(0);
      metrics.entries.reset();
      counted.clear();
      // kafkajs's disconnect waits for the requests still out: a hung broker holds them for
      // its request timeout. A send cut here is not acked, so nothing was deleted for it.
      await settleWithin(
        producer.disconnect().catch(() => undefined),
        DRAIN_STEP_WAIT_MS,
        undefined,
      );
    },
  };
}

function orderIdOf(payload: string): string | null {
  try {
    const { orderId } = JSON.parse(payload) as { orderId?: unknown };
    return typeof orderId === "string" ? orderId : null;
  } catch {
    return null;
  }
}
