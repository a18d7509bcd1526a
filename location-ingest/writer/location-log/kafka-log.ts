import type { Logger } from "pino";
import { createKafkaProducer } from "../../../core/kafka/kafka-producer";
import { settleWithin } from "../../../core/lifecycle/settle-within";
import { DRAIN_STEP_WAIT_MS } from "../../../core/lifecycle/shutdown";
import type { IngestMetrics } from "../../metrics";
import { SPILL_STALL_MS } from "../drain-waits";
import type { ExternalLocationLog, LocationEntry } from "./location-log";
import type { LocationSpill } from "./location-spill";

export const LOCATION_TOPIC = "rider-locations";

export interface KafkaLogOptions {
  brokers: string[];
  /** Records held while Kafka is slow or down; past this, new records go to the spill. */
  bufferRecords: number;
  /** Records per produce request. */
  batchRecords?: number;
  /** Longest wait before retrying a failed send (backoff doubles from 100 ms). */
  retryMaxMs: number;
  /** Where records go that Kafka cannot take: past the buffer, and what is left at close. */
  spill: LocationSpill;
  /** How long close() waits for Kafka to take the buffer before spilling the rest. */
  drainWaitMs: number;
  /** How long close() waits for Redis to take that spill (spillWaitMs). */
  spillWaitMs: number;
  logger: Logger;
  metrics: Pick<IngestMetrics, "logBuffered" | "logSent" | "logFailures">;
}

/** How often a pump held back by spilled records looks again. */
const SPILL_POLL_MS = 200;
const toMessage = (entry: LocationEntry) => ({
  key: entry.riderId,
  value: Buffer.from(entry.record),
  timestamp: String(entry.recordedAtMs),
});

/**
 * The location log on Kafka: records are buffered in memory (bounded) and a
 * single send loop produces them in batches with acks from all in-sync
 * replicas. A failed batch stays at the head of the buffer and is retried
 * with backoff, so an outage delays records; when the buffer is full it
 * moves to the spill (Redis) as a whole, and so does what is left at a drain
 * while Kafka is away; the replay (location-replay.ts) sends spilled records
 * on, and live ones wait while any are spilled, so a rider's records reach
 * Kafka in the order they were acked (its key is the rider: one partition).
 */
export function createKafkaLog(options: KafkaLogOptions): ExternalLocationLog {
  const { bufferRecords, batchRecords = 2_000, retryMaxMs } = options;
  const retryMinMs = Math.min(100, retryMaxMs);
  const { logger, metrics, spill, drainWaitMs } = options;
  const producer = createKafkaProducer(options.brokers, "delivery-edge-ingest");
  const buffer: LocationEntry[] = [];
  let connected = false;
  let sending = false;
  let closed = false;
  let failures = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let lastError: string | undefined;
  let idle: (() => void) | undefined;

  producer.on(producer.events.DISCONNECT, () => {
    connected = false;
  });

  async function produce(entries: readonly LocationEntry[]): Promise<void> {
    if (!connected) {
      await producer.connect();
      connected = true;
    }
    await producer.send({ topic: LOCATION_TOPIC, acks: -1, messages: entries.map(toMessage) });
  }

  async function sendOnce(): Promise<void> {
    const batch = buffer.slice(0, batchRecords);
    await produce(batch);
    // Unless an overflow moved the buffer to the spill meanwhile (then the batch is sent twice).
    if (buffer[0] === batch[0]) buffer.splice(0, batch.length);
    metrics.logSent.inc(batch.length);
    metrics.logBuffered.set(buffer.length);
  }

  function pumpIn(ms: number): void {
    if (closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void pump();
    }, ms);
  }

  async function pump(): Promise<void> {
    if (sending || retryTimer) return;
    sending = true;
    try {
      while (buffer.length > 0) {
        // Spilled records are older: they reach Kafka first (the replay), so each rider's stay in order.
        if (spill.waiting()) return pumpIn(SPILL_POLL_MS);
        await sendOnce();
        if (failures > 0) logger.info({ failures }, "location log: kafka reachable again");
        failures = 0;
        lastError = undefined;
      }
    } catch (error) {
      failures += 1;
      lastError = error instanceof Error ? error.message : String(error);
      metrics.logFailures.inc();
      if (failures === 1) logger.warn({ err: error }, "location log: kafka send failed, retrying");
      connected = false;
      await producer.disconnect().catch(() => undefined);
      pumpIn(Math.min(retryMinMs * 2 ** (failures - 1), retryMaxMs));
    } finally {
      sending = false;
      // close() waits for an empty buffer, or gives up when Kafka failed or the spill goes first.
      if (buffer.length === 0 || failures > 0 || retryTimer) idle?.();
    }
  }

  return {
    append(entry) {
      // A full buffer moves to the spill as a whole, oldest first: the spill keeps each rider's order.
      if (buffer.length >= bufferRecords) spill.keep(buffer.splice(0), "overflow");
      buffer.push(entry);
      metrics.logBuffered.set(buffer.length);
      // Let records of the same tick gather into one produce request.
      if (buffer.length === 1) queueMicrotask(() => void pump());
    },
    produce,
    async close() {
      // Kafka away, or spilled records ahead of the buffer: it goes to the spill at once.
      if (buffer.length > 0 && !closed && failures === 0 && !spill.waiting()) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          idle = resolve;
          timer = setTimeout(resolve, drainWaitMs);
          void pump();
        });
        clearTimeout(timer);
      }
      closed = true;
      clearTimeout(retryTimer);
      // What Kafka did not take in time is kept in Redis (a send still out may land too: a duplicate).
      const left = buffer.splice(0);
      metrics.logBuffered.set(0);
      spill.keep(left, "shutdown");
      const { spilled, lost } = await spill.flush(SPILL_STALL_MS, options.spillWaitMs);
      // Logged once the spill is done: with Redis hung or slow, some or all of them are lost.
      if (left.length > 0)
        logger.warn(
          { records: left.length, spilled, lost, lastError },
          "location log: records Kafka did not take by the drain: spilled to redis, or lost",
        );
      // kafkajs's disconnect waits for the requests still out (a hung broker holds them for
      // its request timeout). A send cut here was not acked: its records were spilled above.
      await settleWithin(
        producer.disconnect().catch(() => undefined),
        DRAIN_STEP_WAIT_MS,
        undefined,
      );
    },
  };
}
