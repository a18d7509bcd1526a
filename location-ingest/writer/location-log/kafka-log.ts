import type { Logger } from "pino";
import { createKafkaProducer } from "../../../core/kafka/kafka-producer";
import type { IngestMetrics } from "../../metrics";
import type { ExternalLocationLog, LocationEntry } from "./location-log";

export const LOCATION_TOPIC = "rider-locations";

export interface KafkaLogOptions {
  brokers: string[];
  /** Records held while Kafka is slow or down; past this, new records are counted and dropped. */
  bufferRecords: number;
  /** Records per produce request. */
  batchRecords?: number;
  /** Longest wait before retrying a failed send (backoff doubles from 100 ms). */
  retryMaxMs: number;
  logger: Logger;
  metrics: Pick<IngestMetrics, "logBuffered" | "logSent" | "logOverflow" | "logFailures">;
}

/**
 * The location log on Kafka: records are buffered in memory (bounded) and a
 * single send loop produces them in batches with acks from all in-sync
 * replicas. A failed batch stays at the head of the buffer and is retried
 * with backoff, so an outage delays records instead of losing them until the
 * buffer overflows.
 */
export function createKafkaLog(options: KafkaLogOptions): ExternalLocationLog {
  const { bufferRecords, batchRecords = 2_000, retryMaxMs } = options;
  const retryMinMs = Math.min(100, retryMaxMs);
  const { logger, metrics } = options;
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

  async function sendOnce(): Promise<void> {
    if (!connected) {
      await producer.connect();
      connected = true;
    }
    const batch = buffer.slice(0, batchRecords);
    await producer.send({
      topic: LOCATION_TOPIC,
      acks: -1,
      messages: batch.map((entry) => ({
        key: entry.riderId,
        value: Buffer.from(entry.record),
        timestamp: String(entry.recordedAtMs),
      })),
    });
    buffer.splice(0, batch.length);
    metrics.logSent.inc(batch.length);
    metrics.logBuffered.set(buffer.length);
  }

  async function pump(): Promise<void> {
    if (sending || retryTimer) return;
    sending = true;
    try {
      while (buffer.length > 0) {
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
      if (!closed) {
        const wait = Math.min(retryMinMs * 2 ** (failures - 1), retryMaxMs);
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          void pump();
        }, wait);
      }
    } finally {
      sending = false;
      // close() waits for an empty buffer, or gives up on the first failure.
      if (buffer.length === 0 || failures > 0) idle?.();
    }
  }

  return {
    append(entry) {
      if (buffer.length >= bufferRecords) {
        metrics.logOverflow.inc();
        return;
      }
      buffer.push(entry);
      metrics.logBuffered.set(buffer.length);
      // Let records of the same tick gather into one produce request.
      if (buffer.length === 1) queueMicrotask(() => void pump());
    },
    unwritableReason() {
      // Only a full buffer loses records; a slow or briefly absent Kafka does not.
      if (buffer.length < bufferRecords) return undefined;
      return `kafka unavailable: buffer full${lastError ? ` (${lastError})` : ""}`;
    },
    async close() {
      if (buffer.length > 0 && !closed && failures === 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          void pump();
        });
      }
      closed = true;
      clearTimeout(retryTimer);
      await producer.disconnect().catch(() => undefined);
    },
  };
}
