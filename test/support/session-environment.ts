import { createMetricsRegistry } from "../../core/observability/metrics";
import type { RedisConnection } from "../../core/redis/client";
import type { IngestConfig } from "../../location-ingest/config";
import { createIngestMetrics } from "../../location-ingest/metrics";
import type { SessionEnvironment } from "../../location-ingest/session/rider-session";
import { createPositionWriter } from "../../location-ingest/writer/position-writer";

/**
 * What rider sessions share, on the real writer and `connection`, with the
 * given clock; geofence crossings land in `crossings`.
 */
export function sessionEnvironment(
  connection: RedisConnection,
  config: IngestConfig,
  now: () => number,
): { env: SessionEnvironment; crossings: unknown[] } {
  const metrics = createIngestMetrics(createMetricsRegistry("ingest"));
  const crossings: unknown[] = [];
  const env: SessionEnvironment = {
    connection,
    writer: createPositionWriter({
      connection,
      locationLog: { kind: "redis-stream", maxLen: 1_000 },
      metrics,
      maxQueued: 100,
      maxBatch: 16,
      maxInFlight: 2,
      restartAfterMs: config.limits.maxLiveAgeMs,
      now,
    }),
    recordCrossings: (_rider, found) => crossings.push(...found),
    limits: config.limits,
    interval: config.interval,
    geofence: config.geofence,
    metrics,
    now,
  };
  return { env, crossings };
}
