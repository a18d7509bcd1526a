import type { Logger } from "pino";
import { DRAIN_STEP_WAIT_MS } from "../../../core/lifecycle/shutdown";
import type { RedisConnection } from "../../../core/redis/client";
import type { IngestConfig } from "../../config";
import type { IngestMetrics } from "../../metrics";
import { createKafkaLog, kafkaLogCloseWaitMs, spillWaitMs } from "./kafka-log";
import type { LocationLog } from "./location-log";
import { startLocationReplay } from "./location-replay";
import { createLocationSpill } from "./location-spill";

/**
 * The longest the log's close() takes when Redis or Kafka hangs or is
 * slow: the replay's stop (a drain step), the buffer's wait for Kafka, then the spill and
 * the producer's disconnect. The capped Redis stream has nothing to close.
 */
export function locationLogCloseWaitMs(
  config: Pick<IngestConfig, "kafkaBrokers" | "kafkaDrainWaitMs" | "kafkaBufferRecords">,
): number {
  if (!config.kafkaBrokers) return 0;
  return (
    DRAIN_STEP_WAIT_MS + config.kafkaDrainWaitMs + kafkaLogCloseWaitMs(config.kafkaBufferRecords)
  );
}

/**
 * The location log the configuration asks for: with KAFKA_BROKERS, Kafka
 * with its spill to Redis and the replay back (closed in that order: the
 * replay stops, then what Kafka does not take is spilled); without, the
 * capped Redis stream per city.
 */
export function openLocationLog(
  config: IngestConfig,
  connection: RedisConnection,
  metrics: IngestMetrics,
  logger: Logger,
): LocationLog {
  if (!config.kafkaBrokers) return { kind: "redis-stream", maxLen: config.locationStreamMaxLen };
  const log = logger.child({ component: "kafka-log" });
  const spill = createLocationSpill({
    connection,
    maxRecords: config.kafkaSpillMaxRecords,
    metrics,
    logger: log,
  });
  const kafka = createKafkaLog({
    brokers: config.kafkaBrokers,
    bufferRecords: config.kafkaBufferRecords,
    retryMaxMs: config.kafkaRetryMaxMs,
    spill,
    drainWaitMs: config.kafkaDrainWaitMs,
    spillWaitMs: spillWaitMs(config.kafkaBufferRecords),
    logger: log,
    metrics,
  });
  const replay = startLocationReplay({
    connection,
    log: kafka,
    spill,
    nodeId: config.nodeId,
    leaseMs: config.kafkaReplayLeaseMs,
    metrics,
    logger: log,
  });
  return {
    kind: "external",
    sink: {
      append: kafka.append,
      produce: kafka.produce,
      async close() {
        await replay.stop();
        await kafka.close();
      },
    },
  };
}
