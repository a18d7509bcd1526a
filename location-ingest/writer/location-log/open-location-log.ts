import type { Logger } from "pino";
import type { RedisConnection } from "../../../core/redis/client";
import type { IngestConfig } from "../../config";
import type { IngestMetrics } from "../../metrics";
import { spillWaitMs } from "../drain-waits";
import { createKafkaLog } from "./kafka-log";
import type { LocationLog } from "./location-log";
import { startLocationReplay } from "./location-replay";
import { createLocationSpill } from "./location-spill";

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
