import { Hono } from "hono";
import { requestId } from "hono/request-id";
import type { Logger } from "pino";
import { createTokenVerifier, type TokenVerifierOptions } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import { raiseParserHeaderLimit } from "../core/http/request-head";
import { stopServerWithin } from "../core/lifecycle/stop-server-within";
import { createHealthRoutes } from "../core/observability/health";
import { createMetricsRegistry } from "../core/observability/metrics";
import { connectRedis } from "../core/redis/client";
import { createTrackingRing, type TrackingRing } from "../core/tracking-ring/tracking-ring";
import { createAccessLog, stdoutWriter } from "./access-log";
import { apiDocument } from "./api/api-document";
import { apiReferenceRoutes } from "./api/api-reference-routes";
import { type GatewayConfig, gatewayDrainTimeoutMs, gatewayRequestsWaitMs } from "./config";
import type { GatewayEnv } from "./context";
import { liveMapRoutes } from "./live-map/live-map-routes";
import { createGatewayMetrics } from "./metrics";
import { createErrorHandler, errorResponse } from "./middleware/error-handler";
import { observeRequests } from "./middleware/observe-requests";
import { startOutboxRelay } from "./outbox-relay";
import { edgeGuards, requestRateLimit, tokenCheck } from "./request-guards";
import { dispatchRoutes } from "./routes/dispatch";
import { orderTrackingRoutes } from "./routes/order-tracking";
import { orderRoutes } from "./routes/orders";
import { restaurantRoutes } from "./routes/restaurants";
import { createUpstreamService } from "./upstream-service";

export interface GatewayApp {
  readonly port: number;
  /** The gateway's view of the tracking ring (the nodes build the same one). */
  readonly ring: TrackingRing;
  /** Every method and path it routes (middleware aside): what the OpenAPI document must list. */
  readonly routes: readonly { method: string; path: string }[];
  drain(): Promise<void>;
  /** How long the process lets drain() run before it cuts it (gatewayDrainTimeoutMs). */
  readonly drainTimeoutMs: number;
}

const PARSER_HEADER_LIMIT_FACTOR = 4;

/** Builds and starts one gateway process from its config. */
export async function startGateway(
  config: GatewayConfig,
  logger: Logger,
  options: { verifier?: TokenVerifierOptions } = {},
): Promise<GatewayApp> {
  const registry = createMetricsRegistry("gateway");
  const connection = await connectRedis(config.redis, "gateway", logger, {
    ackedWrites: config.orderWrites,
  });
  const verifier = createTokenVerifier(config.auth, { ...options.verifier, registry });
  const ring = createTrackingRing({
    connection,
    ttlMs: config.trackingNodeTtlMs,
    refreshMs: config.trackingRingRefreshMs,
    logger,
  });
  await ring
    .refresh()
    .catch((error: unknown) => logger.warn({ err: error }, "tracking ring not loaded yet"));
  const health = createHealthRoutes(
    async () => (connection.isReady() ? undefined : "redis unavailable"),
    registry,
  );

  const metrics = createGatewayMetrics(registry);
  // One breaker per upstream service (search and menu are one service).
  const upstream = (name: string, service: "orders" | "search", baseUrl: string) =>
    createUpstreamService({
      name,
      baseUrl,
      timeoutMs: config.upstreamTimeoutMs,
      maxBodyBytes: config.upstreamMaxBodyBytes,
      breakerFailures: config.upstreamBreakerFailures,
      breakerOpenMs: config.upstreamBreakerOpenMs,
      onCall(seconds, failure) {
        metrics.upstreamCalls.inc({ service });
        metrics.upstreamDuration.observe({ service }, seconds);
        if (failure) metrics.upstreamErrors.inc({ service, code: failure });
      },
      onBreakerState(state) {
        metrics.setBreakerState(service, state);
        if (state === "open") metrics.breakerOpened.inc({ service });
      },
    });

  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(logger));
  app.notFound((c) => errorResponse(c, new EdgeError("not_found", "no such route")));
  app.use(requestId());
  const accessLog = createAccessLog({ tier: "gateway", write: stdoutWriter() });
  // A normal exit (the drain's, a fatal error's) writes the lines still queued.
  const flushAccessLog = () => accessLog.flush();
  process.on("exit", flushAccessLog);
  app.use(observeRequests({ logger, accessLog, recordRequest: metrics.recordRequest }));
  app.use(...edgeGuards(config));
  app.on("GET", ["/healthz", "/readyz", "/metrics"], async (c) => {
    const answer = await health(c.req.raw);
    if (!answer) return c.notFound();
    if (answer.status === 503) c.set("errorCode", "unavailable");
    // Through the context, so the headers set before the route (request id, CORS) stay on it.
    return c.newResponse(answer.body, answer);
  });
  app.use("/v1/*", tokenCheck(config, { client: connection.client, verifier, metrics }));
  app.use("/v1/*", requestRateLimit(config, { client: connection.client, metrics }));
  app.route(
    "/",
    await apiReferenceRoutes(
      apiDocument({ maxRadiusM: config.candidateMaxRadiusM, maxCount: config.candidateMaxCount }),
    ),
  );
  app.route("/", await liveMapRoutes({ connection, ring, freshForMs: config.candidateFreshMs }));
  app.route(
    "/",
    orderTrackingRoutes({ connection, ring, orderEndedTtlMs: config.orderEndedTtlMs }),
  );
  app.route(
    "/",
    restaurantRoutes({
      client: connection.client,
      search: upstream("search service", "search", config.searchServiceUrl),
      cacheSeconds: config.searchCacheSeconds,
      staleIfErrorSeconds: config.searchStaleIfErrorSeconds,
    }),
  );
  app.route(
    "/",
    dispatchRoutes({
      connection,
      freshForMs: config.candidateFreshMs,
      maxRadiusM: config.candidateMaxRadiusM,
      maxCount: config.candidateMaxCount,
    }),
  );
  app.route(
    "/",
    orderRoutes({
      connection,
      orders: upstream("order service", "orders", config.orderServiceUrl),
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      leaseMarginMs: config.idempotencyLeaseMarginMs,
      onIdempotency: (outcome) => metrics.idempotency.inc({ outcome }),
    }),
  );

  const relay = config.kafkaBrokers
    ? startOutboxRelay({
        connection,
        brokers: config.kafkaBrokers,
        nodeId: config.nodeId,
        everyMs: config.outboxRelayEveryMs,
        leaseMs: config.outboxLeaseMs,
        registry,
        logger: logger.child({ component: "outbox-relay" }),
      })
    : undefined;
  // Past our own limit the middleware answers 431 in the error shape; Bun's bare 431 only far past it.
  raiseParserHeaderLimit(PARSER_HEADER_LIMIT_FACTOR * config.maxHeaderBytes);
  const server = Bun.serve({ port: config.port, hostname: config.bindHost, fetch: app.fetch });
  logger.info({ port: server.port }, "gateway listening");
  return {
    port: server.port ?? config.port,
    ring,
    routes: app.routes
      .filter((route) => route.method !== "ALL")
      .map(({ method, path }) => ({ method, path })),
    async drain() {
      ring.stop();
      await stopServerWithin(server, gatewayRequestsWaitMs(config));
      accessLog.flush();
      process.off("exit", flushAccessLog);
      await relay?.stop();
      await connection.close();
    },
    drainTimeoutMs: gatewayDrainTimeoutMs(config),
  };
}
