import type { Logger } from "pino";
import { createTokenVerifier, type TokenVerifierOptions } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import { raiseParserHeaderLimit } from "../core/http/request-head";
import { createHealthRoutes } from "../core/observability/health";
import { createMetricsRegistry } from "../core/observability/metrics";
import {
  metricTotal,
  ratePerSecond,
  startNodeStatsReporter,
  windowedQuantile,
} from "../core/observability/node-stats";
import { CLOSE } from "../core/protocol/tracking-protocol";
import { createRedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { ORDER_FIELDS, parseOrderRecord } from "../core/redis/order-record";
import { joinTrackingRegistry } from "../core/tracking-ring/node-registry";
import { createTrackingRing, type TrackingRing } from "../core/tracking-ring/tracking-ring";
import { PARSER_HEADER_LIMIT_BYTES, type TrackingConfig } from "./config";
import { startHeartbeat } from "./heartbeat";
import { createTrackingMetrics } from "./metrics";
import { createOrderSubscriptions } from "./order-subscriptions";
import { createOrderViews } from "./order-views";
import { createOrderWatch } from "./order-watch";
import { createRingOwnerRoute } from "./ring-owner-route";
import { createSocketQuota } from "./socket-quota";
import { createWatchUpgrade } from "./watch-upgrade";
import { createWatchers, type WatcherData } from "./watchers";

export interface TrackingApp {
  readonly port: number;
  readonly registry: ReturnType<typeof createMetricsRegistry>;
  /** This node's view of the ring (the gateway builds the same one). */
  readonly ring: TrackingRing;
  /** Redis subscriptions held right now (one per watched order). */
  subscriptionCount(): number;
  /**
   * SIGTERM: leave the registry at a quiet moment, keep serving until every
   * ring drops this node at the next tick, then send every watcher `moved`
   * (the new owner) + 1012, stop.
   */
  drain(): Promise<void>;
}

const REDIS_STARTUP_WAIT_MS = 5_000;
// The close reason the engine gives a socket it closed for a frame over maxPayloadLength.
const ENGINE_TOO_BIG_REASON = "Received too big message";

/** Builds and starts one tracking node from its config. */
export async function startTracking(
  config: TrackingConfig,
  logger: Logger,
  options: { verifier?: TokenVerifierOptions } = {},
): Promise<TrackingApp> {
  const registry = createMetricsRegistry("tracking");
  const connection = createRedisConnection(config.redis, "tracking", logger);
  if (!(await connection.waitReady(REDIS_STARTUP_WAIT_MS)))
    logger.warn("redis not reachable at start; serving anyway");
  const self = { id: config.nodeId, url: config.publicUrl };
  // Leaving: out of the registry, serving until the rings drop it. Draining: refusing.
  let leaving = false;
  let draining = false;

  const subscriptions = createOrderSubscriptions({
    connection,
    logger,
    unsubscribeAfterMs: config.unsubscribeAfterMs,
    onEvent: (orderId, payload) => orderWatch.onEvent(orderId, payload),
    onResubscribed: (orderIds) => orderWatch.resync(orderIds),
  });
  const metrics = createTrackingMetrics(registry, subscriptions.subscriptionCount);
  const watchers = createWatchers({
    metrics,
    limits: config,
    seqRestartAfterMs: config.seqRestartAfterMs,
    publish: (topic, data) => server.publish(topic, data, false),
  });
  const views = createOrderViews();
  const orderWatch = createOrderWatch({
    connection,
    watchers,
    views,
    subscriptions,
    metrics,
    logger,
  });
  const quota = createSocketQuota({
    perUser: config.maxSocketsPerUser,
    perStaff: config.maxSocketsPerStaff,
  });

  const ring = createTrackingRing({
    connection,
    ttlMs: config.nodeTtlMs,
    refreshMs: config.ringRefreshMs,
    logger,
    onChange() {
      if (!leaving) moveLostOrders();
    },
  });

  /** After a ring change: watchers of orders another node now owns are sent there. */
  function moveLostOrders(): void {
    for (const orderId of watchers.orders()) {
      const owner = ring.ownerOf(orderId);
      if (!owner || owner.id === self.id) continue;
      for (const ws of watchers.forOrder(orderId)) watchers.close(ws, CLOSE.moved, owner.url);
    }
  }

  const health = createHealthRoutes(
    async () => (connection.isReady() ? undefined : "redis unavailable"),
    registry,
  );
  const ringOwner = createRingOwnerRoute(ring);
  const watchUpgrade = createWatchUpgrade({
    publicPath: config.publicPath,
    nodeId: self.id,
    maxHeaderBytes: config.maxHeaderBytes,
    verifier: createTokenVerifier(config.auth, options.verifier),
    async loadOrder(orderId) {
      if (!connection.isReady()) throw new EdgeError("unavailable", "tracking store unavailable");
      const values = await connection.client.hmget(keys.order(orderId), ...ORDER_FIELDS);
      const order = parseOrderRecord(orderId, values);
      if (!order) throw new EdgeError("not_found", "no such order");
      return order;
    },
    quota,
    async settleOwner(orderId) {
      // Just after a tick starts, rings read a few ms apart: one still on the
      // last tick must not send a watcher back to where it came from.
      if (ring.ownerOf(orderId)?.id !== self.id && !ring.isCurrent())
        await ring.refresh().catch(() => false);
    },
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
      return ringOwner(request) ?? (await health(request)) ?? watchUpgrade(request, server);
    },
    websocket: {
      backpressureLimit: config.closeAboveBytes * 2,
      closeOnBackpressureLimit: false,
      // Clients send nothing: a bigger frame is refused as its header arrives, never buffered.
      maxPayloadLength: config.maxMessageBytes,
      // The heartbeat below does this job (the engine's timer restarts on every send).
      idleTimeout: 0,
      sendPings: false,
      open(ws) {
        const owner = ring.ownerOf(ws.data.orderId);
        if (owner && owner.id !== self.id) {
          watchers.close(ws, CLOSE.moved, owner.url);
          return;
        }
        watchers.add(ws);
        subscriptions.acquire(ws.data.orderId);
        orderWatch.open(ws);
      },
      message(ws) {
        watchers.close(ws, CLOSE.unexpectedMessage);
      },
      pong(ws) {
        ws.data.awaitingPong = false;
      },
      drain(ws) {
        watchers.drained(ws);
      },
      close(ws, _code, reason) {
        quota.release(ws.data.quotaKey);
        if (!ws.data.closing && reason === ENGINE_TOO_BIG_REASON)
          metrics.socketsClosed.inc({ reason: CLOSE.messageTooBig.reason });
        // Nothing more is sent to it (a snapshot may still be on its way).
        ws.data.closing = true;
        // Each watcher holds one reference on its order's subscription.
        if (!watchers.remove(ws)) return;
        subscriptions.release(ws.data.orderId);
        if (watchers.forOrder(ws.data.orderId).size === 0) views.forget(ws.data.orderId);
      },
    },
  });
  const heartbeat = startHeartbeat({
    intervalMs: config.pingIntervalMs,
    sockets: watchers.all,
    onSilent: (ws) => watchers.drop(ws, "no pong"),
  });
  // Join the ring only once listening: clients sent here must find the node up.
  // Joining mid-tick lets every other ring see the node at the same next tick.
  await ring.quietMoment();
  const membership = await joinTrackingRegistry({
    connection,
    node: self,
    heartbeatMs: config.heartbeatMs,
    logger,
  });
  await ring.refresh();
  const framesPerSecond = ratePerSecond(() => metricTotal(metrics.framesSent));
  const fanoutP99 = windowedQuantile(metrics.pingToFrameLag, 0.99);
  const stats = startNodeStatsReporter({
    connection,
    tier: "tracking",
    nodeId: self.id,
    logger,
    figures: async () => {
      const p99 = await fanoutP99();
      return {
        sockets: await metricTotal(metrics.sockets),
        framesPerSecond: await framesPerSecond(),
        ...(p99 === undefined ? {} : { fanoutP99Ms: p99 * 1000 }),
      };
    },
  });
  logger.info({ port: server.port, node: self.id, url: self.url }, "tracking listening");

  return {
    port: server.port ?? config.port,
    registry,
    ring,
    subscriptionCount: subscriptions.subscriptionCount,
    async drain() {
      leaving = true;
      // Out of the registry mid-tick: every ring, this one included, drops the
      // node at the next tick, so a watcher moved then finds a new owner that
      // agrees (never one that sends it back). Until then this node serves.
      // With Redis gone the heartbeat simply stops and the TTL takes the node out.
      const left = (async () => {
        await ring.quietMoment();
        await membership
          .leave()
          .catch((error: unknown) => logger.warn({ err: error }, "could not leave the ring"));
        await ring.nextTick();
      })();
      // Bounded: a Redis that hangs (a cluster queues commands) must not hold a deploy.
      await Promise.race([left, Bun.sleep(3 * config.ringRefreshMs)]);
      draining = true;
      heartbeat.stop();
      await stats.stop();
      ring.stop();
      for (const ws of watchers.all()) {
        const owner = ring.ownerOf(ws.data.orderId);
        watchers.close(ws, CLOSE.draining, owner && owner.id !== self.id ? owner.url : undefined);
      }
      subscriptions.close();
      await server.stop();
      await connection.close();
    },
  };
}
