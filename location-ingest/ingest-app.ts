import type { Logger } from "pino";
import { createTokenVerifier, type TokenVerifierOptions } from "../core/auth/token-verifier";
import { createHealthRoutes } from "../core/observability/health";
import { createMetricsRegistry } from "../core/observability/metrics";
import {
  metricTotal,
  ratePerSecond,
  startNodeStatsReporter,
} from "../core/observability/node-stats";
import { createRedisConnection } from "../core/redis/client";
import type { IngestConfig } from "./config";
import { createGeofences } from "./geofences";
import { startH2cServer } from "./h2c-server";
import { startHttp1Server } from "./http1-server";
import { createIngestService } from "./ingest-service";
import { createKafkaLog } from "./location-log/kafka-log";
import type { LocationLog } from "./location-log/location-log";
import { createIngestMetrics } from "./metrics";
import { createIntake } from "./ping-intake";
import { createPingWriter } from "./ping-writer";
import { createRiderCalls } from "./rider-calls";
import { createRiderInbox } from "./rider-inbox";
import { createRiderStateStore } from "./rider-state";
import { createRiderStreams } from "./rider-streams";
import { startStaleRiderSweeper } from "./stale-rider-sweeper";

const REDIS_STARTUP_WAIT_MS = 5_000;

export interface IngestApp {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly metrics: ReturnType<typeof createIngestMetrics>;
  readonly registry: ReturnType<typeof createMetricsRegistry>;
  /** SIGTERM: stop taking streams, tell riders to reconnect, flush, close. */
  drain(): Promise<void>;
}

/** Builds and starts one ingest process from its config. */
export async function startIngest(
  config: IngestConfig,
  logger: Logger,
  options: { verifier?: TokenVerifierOptions } = {},
): Promise<IngestApp> {
  const registry = createMetricsRegistry("ingest");
  const metrics = createIngestMetrics(registry);
  const connection = createRedisConnection(config.redis, "ingest", logger);
  // Start serving either way; until Redis answers, /readyz says so and pings report drops.
  if (!(await connection.waitReady(REDIS_STARTUP_WAIT_MS))) {
    logger.warn("redis not reachable at start; serving anyway");
  }
  const locationLog: LocationLog = config.kafkaBrokers
    ? {
        kind: "external",
        sink: createKafkaLog({
          brokers: config.kafkaBrokers,
          bufferRecords: config.kafkaBufferRecords,
          retryMaxMs: config.kafkaRetryMaxMs,
          logger: logger.child({ component: "kafka-log" }),
          metrics,
        }),
      }
    : { kind: "redis-stream", maxLen: config.locationStreamMaxLen };
  const writer = createPingWriter({
    connection,
    locationLog,
    metrics,
    maxQueued: config.maxQueuedPings,
    maxBatch: config.maxBatchPings,
    maxInFlight: config.maxFlushesInFlight,
  });
  const intake = createIntake({
    limits: config.limits,
    interval: config.interval,
    writer,
    geofences: createGeofences({
      connection,
      policy: config.geofence,
      metrics,
      logger: logger.child({ component: "geofences" }),
    }),
    metrics,
  });
  const states = createRiderStateStore(connection);
  const verifier = createTokenVerifier(config.auth, options.verifier);
  const streams = createRiderStreams({
    intake,
    states,
    inbox: createRiderInbox(connection, logger),
    metrics,
  });
  const service = createIngestService({
    intake,
    states,
    streams,
    maxUploadPings: config.maxUploadPings,
  });
  const sweeper = startStaleRiderSweeper({
    connection,
    localCities: states.cities,
    staleMs: config.staleRiderMs,
    everyMs: config.sweepEveryMs,
    metrics,
    logger,
  });
  const health = createHealthRoutes(async () => {
    if (!connection.isReady()) return "redis unavailable";
    return locationLog.kind === "external" ? locationLog.sink.unwritableReason() : undefined;
  }, registry);
  const riderCalls = createRiderCalls({
    verifier,
    maxPerRider: config.transport.maxStreamsPerRider,
    metrics,
  });
  const transport = {
    service,
    riderCalls,
    limits: config.transport,
    metrics,
    logger,
    bindHost: config.bindHost,
  };
  const grpc = await startH2cServer(config.grpcPort, { ...transport, streams });
  const http = startHttp1Server(config.httpPort, { ...transport, healthRoutes: health });
  const pingsPerSecond = ratePerSecond(() => metricTotal(metrics.pingsAccepted));
  const stats = startNodeStatsReporter({
    connection,
    tier: "ingest",
    nodeId: config.nodeId,
    logger,
    figures: async () => ({
      pingsPerSecond: await pingsPerSecond(),
      streams: await metricTotal(metrics.streams),
    }),
  });
  logger.info(
    { grpcPort: grpc.port, httpPort: http.port, redis: config.redis.mode, node: config.nodeId },
    "ingest listening",
  );

  return {
    grpcPort: grpc.port,
    httpPort: http.port,
    metrics,
    registry,
    async drain() {
      const told = streams.drain(config.drainReconnectMs);
      logger.info({ streams: told }, "rider streams told to reconnect");
      sweeper.stop();
      await stats.stop();
      // Closing the servers ends every request loop, so nothing is queued after the flush.
      await Promise.all([grpc.close(), http.close()]);
      await writer.drain();
      if (locationLog.kind === "external") await locationLog.sink.close();
      await connection.close();
    },
  };
}
