import type { Logger } from "pino";
import { orderNotFound } from "../core/auth/order-access";
import { createTokenVerifier, type TokenVerifierOptions } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import { raiseParserHeaderLimit } from "../core/http/request-head";
import { stopServerWithin } from "../core/lifecycle/stop-server-within";
import { clientAddress, createAuthFailureLimiter } from "../core/limits/auth-failure-limit";
import { createHealthRoutes } from "../core/observability/health";
import { createMetricsRegistry } from "../core/observability/metrics";
import { connectRedis } from "../core/redis/client";
import { readOrderRecord } from "../core/redis/order-record";
import type { TrackingRing } from "../core/tracking-ring/tracking-ring";
import {
  PARSER_HEADER_LIMIT_BYTES,
  SERVER_STOP_WAIT_MS,
  type TrackingConfig,
  trackingDrainTimeoutMs,
} from "./config";
import { startHeartbeat } from "./heartbeat";
import { startLiveFigures } from "./live-figures";
import { createTrackingMetrics } from "./metrics";
import { createOrderSubscriptions } from "./order-subscriptions";
import { createOrderViews } from "./order-views";
import { createOrderWatch } from "./order-watch";
import { createRingMembership } from "./ring-membership";
import { createRingOwnerRoute } from "./ring-owner-route";
import { createSocketQuota } from "./socket-quota";
import { createWatchAttempts } from "./watch-attempts";
import { createWatchSockets } from "./watch-sockets";
import { createWatchUpgrade } from "./watch-upgrade";
import type { WatcherData } from "./watcher-socket";
import { createWatchers } from "./watchers";

export interface TrackingApp {
  readonly port: number;
  readonly registry: ReturnType<typeof createMetricsRegistry>;
  /** This node's view of the ring (the gateway builds the same one). */
  readonly ring: TrackingRing;
  /** Redis subscriptions held right now (one per watched order). */
  subscriptionCount(): number;
  /**
   * SIGTERM: leave the registry from a tick chosen ahead, keep serving until
   * this node's ring has dropped it at that tick, then send every watcher `moved`
   * (the new owner) + the drain close, stop.
   */
  drain(): Promise<void>;
  /** How long the process lets drain() run before it cuts it (trackingDrainTimeoutMs). */
  readonly drainTimeoutMs: number;
  /**
   * Settles when the node stopped serving by itself: its id was claimed by
   * another node (it stalled past TRACKING_NODE_TTL_MS), so it sent every
   * watcher to the id's new holder with the drain close and closed, leaving
   * the registry and the claim to that holder. The process should exit
   * non-zero for its supervisor (runMain does).
   */
  readonly failed: Promise<Error>;
}

/** Builds and starts one tracking node from its config: the composition root. */
export async function startTracking(
  config: TrackingConfig,
  logger: Logger,
  options: { verifier?: TokenVerifierOptions } = {},
): Promise<TrackingApp> {
  const registry = createMetricsRegistry("tracking");
  const connection = await connectRedis(config.redis, "tracking", logger);
  const self = { id: config.nodeId, url: config.publicUrl };
  let draining = false;
  // The id is another node's now: nothing under it (its live figures included) is this node's.
  let idLost = false;
  let stopping: Promise<void> | undefined;
  const claimLost = Promise.withResolvers<void>();

  const subscriptions = createOrderSubscriptions({
    connection,
    logger,
    unsubscribeAfterMs: config.unsubscribeAfterMs,
    onEvent: (orderId, payload) => orderWatch.onEvent(orderId, payload),
    onResubscribed: (orderIds) => orderWatch.resync(orderIds),
  });
  const metrics = createTrackingMetrics(registry, subscriptions.subscriptionCount);
  const verifier = createTokenVerifier(config.auth, { ...options.verifier, registry });
  const watchers = createWatchers({
    metrics,
    limits: config,
    seqRestartAfterMs: config.seqRestartAfterMs,
    publish: (topic, data) => server.publish(topic, data, false),
    revocations: verifier,
  });
  const views = createOrderViews();
  const orderWatch = createOrderWatch({
    connection,
    watchers,
    views,
    subscriptions,
    metrics,
    logger,
    snapshotMaxAgeMs: config.seqRestartAfterMs,
  });
  const quota = createSocketQuota({
    perUser: config.maxSocketsPerUser,
    perStaff: config.maxSocketsPerStaff,
  });
  const attempts = createWatchAttempts({
    perUser: config.maxWatchAttemptsPerUser,
    perStaff: config.maxWatchAttemptsPerStaff,
    windowMs: config.watchAttemptsWindowMs,
  });
  const membership = createRingMembership({
    connection,
    self,
    ringRefreshMs: config.ringRefreshMs,
    nodeTtlMs: config.nodeTtlMs,
    heartbeatMs: config.heartbeatMs,
    watchers,
    onClaimLost() {
      // No new watch from here on: the id's watchers belong with its new holder.
      draining = true;
      idLost = true;
      metrics.nodeIdClaimLost.inc();
      claimLost.resolve();
    },
    logger,
  });

  const health = createHealthRoutes(
    async () => (connection.isReady() ? undefined : "redis unavailable"),
    registry,
  );
  const ringOwner = createRingOwnerRoute(membership.ring);
  const watchUpgrade = createWatchUpgrade({
    publicPath: config.publicPath,
    nodeId: self.id,
    maxHeaderBytes: config.maxHeaderBytes,
    verifier,
    failures: {
      limiter: createAuthFailureLimiter({
        client: connection.client,
        limit: config.authFailureLimit,
        windowMs: config.authFailureWindowMs,
      }),
      clientAddress: (request, server) =>
        clientAddress(
          config.clientAddressHeader ? request.headers.get(config.clientAddressHeader) : undefined,
          () => server.requestIP(request)?.address,
        ),
    },
    async loadOrder(orderId) {
      if (!connection.isReady()) throw new EdgeError("unavailable", "tracking store unavailable");
      const order = await readOrderRecord(connection.client, orderId);
      if (!order) throw orderNotFound();
      return order;
    },
    quota,
    attempts,
    settleOwner: membership.settleOwner,
    metrics,
    isDraining: () => draining,
    logger,
  });
  // Requests up to the parser's limit reach the handler, which answers 431 in the error shape.
  raiseParserHeaderLimit(PARSER_HEADER_LIMIT_BYTES);
  const server = Bun.serve<WatcherData>({
    port: config.port,
    hostname: config.bindHost,
    async fetch(request, server) {
      return (await ringOwner(request)) ?? (await health(request)) ?? watchUpgrade(request, server);
    },
    websocket: createWatchSockets({
      closeAboveBytes: config.closeAboveBytes,
      maxMessageBytes: config.maxMessageBytes,
      otherOwner: membership.otherOwner,
      watchers,
      subscriptions,
      orderWatch,
      views,
      quota,
      metrics,
      logger,
    }),
  });
  const heartbeat = startHeartbeat({
    intervalMs: config.pingIntervalMs,
    sockets: watchers.all,
    onSilent: (ws) => watchers.drop(ws, "no pong"),
  });
  await membership.join();
  const figures = startLiveFigures({ connection, nodeId: self.id, metrics, logger });
  logger.info({ port: server.port, node: self.id, url: self.url }, "tracking listening");

  /**
   * Refuses new watches, sends every watcher away (`moved` to its order's
   * owner, if any), closes; once the id is lost (before or during a drain)
   * it leaves the live figures under the id to the id's new holder.
   */
  async function stopServing(): Promise<void> {
    draining = true;
    heartbeat.stop();
    await figures.stop({ forget: !idLost });
    membership.sendEveryoneAway();
    subscriptions.close();
    // Watch requests under way (one may wait on a hanging Redis) get a short bound, then are cut.
    await stopServerWithin(server, SERVER_STOP_WAIT_MS);
    await connection.close();
  }

  // The id is another node's: no ring names this one any more, so its watchers would see
  // nothing new from here on a move of the ring. They go to the id's new holder now.
  const failed = claimLost.promise.then(async () => {
    // A drain already under way finishes as it began (its leave() writes nothing once lost).
    stopping ??= membership.abandon().then(stopServing);
    // Stopped as far as it could: the process must go either way.
    await stopping.catch((error: unknown) =>
      logger.error({ err: error }, "stop after the lost claim failed"),
    );
    return new Error("TRACKING_NODE_ID claimed by another node");
  });

  return {
    port: server.port ?? config.port,
    registry,
    ring: membership.ring,
    subscriptionCount: subscriptions.subscriptionCount,
    drain() {
      stopping ??= membership.leave().then(stopServing);
      return stopping;
    },
    drainTimeoutMs: trackingDrainTimeoutMs(config),
    failed,
  };
}
