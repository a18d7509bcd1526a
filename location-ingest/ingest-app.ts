import type { Logger } from "pino";
import { createTokenVerifier, type TokenVerifierOptions } from "../core/auth/token-verifier";
import { createAuthFailureLimiter } from "../core/limits/auth-failure-limit";
import { createHealthRoutes } from "../core/observability/health";
import { createMetricsRegistry } from "../core/observability/metrics";
import {
  metricTotal,
  ratePerSecond,
  startNodeStatsReporter,
} from "../core/observability/node-stats";
import { connectRedis } from "../core/redis/client";
import { type IngestConfig, ingestDrainTimeoutMs } from "./config";
import { createIngestMetrics, limitHitReporter } from "./metrics";
import { createRiderInbox } from "./session/rider-inbox";
import { createRiderSessions } from "./session/rider-sessions";
import { startStaleRiderSweeper } from "./stale-rider-sweeper";
import { createConnectService } from "./wire/connect-service";
import { startH2cServer } from "./wire/h2c-server";
import { startHttp1Server } from "./wire/http1-server";
import { createRiderCalls } from "./wire/rider-calls";
import { createSendPing } from "./wire/send-ping";
import { createGeofenceRecorder } from "./writer/geofence-recorder";
import { openLocationLog } from "./writer/location-log/open-location-log";
import { createPositionWriter } from "./writer/position-writer";

/** Sessions of riders without an open call kept for reuse (unary pings), least recently used out. */
const MAX_IDLE_SESSIONS = 50_000;

export interface IngestApp {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly metrics: ReturnType<typeof createIngestMetrics>;
  readonly registry: ReturnType<typeof createMetricsRegistry>;
  /** SIGTERM: stop taking streams, tell riders to reconnect, flush, close. */
  drain(): Promise<void>;
  /** How long the process lets drain() run before it cuts it (ingestDrainTimeoutMs). */
  readonly drainTimeoutMs: number;
}

/** Builds and starts one ingest process from its config. */
export async function startIngest(
  config: IngestConfig,
  logger: Logger,
  options: { verifier?: TokenVerifierOptions } = {},
): Promise<IngestApp> {
  const registry = createMetricsRegistry("ingest");
  const metrics = createIngestMetrics(registry);
  // Start serving either way; until Redis answers, /readyz says so and pings report drops.
  const connection = await connectRedis(config.redis, "ingest", logger);
  const locationLog = openLocationLog(config, connection, metrics, logger);
  // writer <- session <- wire: each layer built from the one below.
  const writer = createPositionWriter({
    connection,
    locationLog,
    metrics,
    maxQueued: config.maxQueuedPings,
    maxBatch: config.maxBatchPings,
    maxInFlight: config.maxFlushesInFlight,
    restartAfterMs: config.limits.maxLiveAgeMs,
  });
  const sessions = createRiderSessions({
    env: {
      connection,
      writer,
      recordCrossings: createGeofenceRecorder({
        connection,
        autoStatus: config.geofence.autoStatus,
        metrics,
        logger: logger.child({ component: "geofences" }),
      }),
      limits: config.limits,
      interval: config.interval,
      geofence: config.geofence,
      metrics,
      now: Date.now,
    },
    inbox: createRiderInbox(connection, logger),
    maxIdle: MAX_IDLE_SESSIONS,
    logger,
  });
  const sendPing = createSendPing(sessions);
  const verifier = createTokenVerifier(config.auth, { ...options.verifier, registry });
  const service = createConnectService({
    sessions,
    revocations: verifier,
    sendPing,
    maxUploadPings: config.maxUploadPings,
  });
  const sweeper = startStaleRiderSweeper({
    connection,
    localCities: sessions.cities,
    staleMs: config.staleRiderMs,
    everyMs: config.sweepEveryMs,
    metrics,
    logger,
  });
  // Kafka away is not a reason to leave the balancer: records wait in the buffer, then in Redis.
  const health = createHealthRoutes(
    async () => (connection.isReady() ? undefined : "redis unavailable"),
    registry,
  );
  const riderCalls = createRiderCalls({
    verifier,
    // One count per client address with the gateway's and the tracking nodes' (same Redis key).
    authFailures: createAuthFailureLimiter({
      client: connection.client,
      limit: config.authFailureLimit,
      windowMs: config.authFailureWindowMs,
    }),
    maxPerRider: config.transport.maxCallsPerRider,
    reportLimit: limitHitReporter(metrics, logger),
    logger,
  });
  const transport = {
    service,
    sendPing,
    riderCalls,
    limits: config.transport,
    metrics,
    logger,
    bindHost: config.bindHost,
    clientAddressHeader: config.clientAddressHeader,
  };
  const grpc = await startH2cServer(config.grpcPort, {
    ...transport,
    sessions,
    revocations: verifier,
  });
  const http = await startHttp1Server(config.httpPort, { ...transport, healthRoutes: health });
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
      const told = sessions.drain(config.drainReconnectMs);
      logger.info({ streams: told }, "rider streams told to reconnect");
      sweeper.stop();
      // Closing the servers ends every request loop, so nothing is queued after the flush;
      // the live figures' last report and delete wait on Redis alongside.
      await Promise.all([stats.stop(), grpc.close(), http.close()]);
      await writer.drain();
      if (locationLog.kind === "external") await locationLog.sink.close();
      await connection.close();
    },
    drainTimeoutMs: ingestDrainTimeoutMs(config),
  };
}
