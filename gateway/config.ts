import { ConfigError, type Env, readInt, readPort, readString, readUrl } from "../core/config/env";
import {
  type AuthConfig,
  type AuthFailureConfig,
  loadAuthConfig,
  loadAuthFailureConfig,
  loadKafkaBrokers,
  loadRedisConfig,
  type RedisConfig,
  readBindHost,
  readNodeId,
} from "../core/config/shared-config";
import { DEFAULT_DRAIN_TIMEOUT_MS, DRAIN_STEP_WAIT_MS } from "../core/lifecycle/shutdown";

export interface GatewayConfig extends AuthFailureConfig {
  readonly redis: RedisConfig;
  /**
   * Order changes (status, assignment, a create and its stored answer) are
   * acknowledged only once this many replicas have them, waiting at most
   * `replicaTimeoutMs` (WAIT); otherwise 503.
   */
  readonly orderWrites: { readonly replicas: number; readonly timeoutMs: number };
  readonly auth: AuthConfig;
  /** The address the listener binds (BIND_HOST). */
  readonly bindHost: string;
  readonly port: number;
  /** Requests per identity per window before 429. */
  readonly rateLimit: number;
  readonly rateLimitWindowMs: number;
  readonly maxBodyBytes: number;
  /** Request line plus headers; over it 431. */
  readonly maxHeaderBytes: number;
  /** The query string alone; over it 431. */
  readonly maxQueryBytes: number;
  /** Origins allowed by CORS; "*" allows any. */
  readonly corsOrigins: readonly string[];
  /** Tracking nodes silent this long are out of the ring (same as the nodes' own setting). */
  readonly trackingNodeTtlMs: number;
  readonly trackingRingRefreshMs: number;
  readonly orderServiceUrl: string;
  /** Unset: status changes stay in their outbox streams. */
  readonly kafkaBrokers?: string[];
  /** This gateway's name among the outbox relays (and in their leases). */
  readonly nodeId: string;
  /** Pause between relay passes that found nothing more to move. */
  readonly outboxRelayEveryMs: number;
  /** An outbox partition lease; a dead gateway's partitions are taken over within about this. */
  readonly outboxLeaseMs: number;
  readonly searchServiceUrl: string;
  readonly searchCacheSeconds: number;
  readonly upstreamTimeoutMs: number;
  /** An upstream answer larger than this is 502. */
  readonly upstreamMaxBodyBytes: number;
  /** Consecutive failures of one upstream that open its breaker, and how long it stays open. */
  readonly upstreamBreakerFailures: number;
  readonly upstreamBreakerOpenMs: number;
  /** How long past `searchCacheSeconds` a cached search may stand in when the service fails. */
  readonly searchStaleIfErrorSeconds: number;
  /** An order create's in-flight claim lives the upstream timeout plus this (renewed while it runs). */
  readonly idempotencyLeaseMarginMs: number;
  /** Riders whose last ping is older than this are not dispatch candidates. */
  readonly candidateFreshMs: number;
  /** Largest `radiusM` of a candidate search (its Redis cost grows with the riders in the box). */
  readonly candidateMaxRadiusM: number;
  /** Largest `limit` of a candidate search. */
  readonly candidateMaxCount: number;
  /** An order's tracking record expires this long after it is DELIVERED or CANCELLED. */
  readonly orderEndedTtlMs: number;
}

/**
 * `CORS_ORIGINS`: `*` or origins exactly as browsers send them in `Origin`
 * (scheme, host, port): CORS compares them as strings, so a trailing slash,
 * a path or a missing scheme would never match and is refused at start.
 */
function readCorsOrigins(env: Env): string[] {
  const raw = readString(env, "CORS_ORIGINS", "*");
  const origins = raw
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (origin === "*") continue;
    if (URL.parse(origin)?.origin !== origin)
      throw new ConfigError(
        "CORS_ORIGINS",
        "must be * or origins such as https://app.example.com (scheme, host, port; no path or trailing slash), comma-separated",
        raw,
      );
  }
  return origins;
}

/** The candidate search's default bounds: part of the API's published document (docs/openapi.json). */
/**
 * How long a drain lets the requests under way finish: a normal one takes
 * at most its upstream call (`UPSTREAM_TIMEOUT_MS`) and a few Redis round
 * trips. Past it they are closed unanswered: Bun's own stop waits for every
 * request, so one stuck on a hanging Redis (no deadline on its commands)
 * would hold the drain until Bun's idle timeout cut its connection (10 s).
 */
export function gatewayRequestsWaitMs(config: Pick<GatewayConfig, "upstreamTimeoutMs">): number {
  return config.upstreamTimeoutMs + 1_000;
}

/**
 * The outbox relay's stop (outbox-relay.ts): the pass under way, the leases'
 * give-back and the producer's disconnect, a drain step's wait each.
 */
const RELAY_STOP_WAIT_MS = 3 * DRAIN_STEP_WAIT_MS;

/**
 * The drain's cut: 15 s, or when longer the drain's own worst case (the
 * requests' wait, the outbox relay's stop when it runs, QUIT's) and 5 s of slack.
 */
export function gatewayDrainTimeoutMs(
  config: Pick<GatewayConfig, "upstreamTimeoutMs" | "kafkaBrokers">,
): number {
  const relayStopMs = config.kafkaBrokers ? RELAY_STOP_WAIT_MS : 0;
  const worstMs = gatewayRequestsWaitMs(config) + relayStopMs + DRAIN_STEP_WAIT_MS;
  return Math.max(DEFAULT_DRAIN_TIMEOUT_MS, worstMs + 5_000);
}

export const DISPATCH_DEFAULTS = { maxRadiusM: 5_000, maxCount: 50 } as const;

/** Reads and checks the gateway's configuration; throws ConfigError naming a bad variable. */
export function loadGatewayConfig(env: Env): GatewayConfig {
  const kafkaBrokers = loadKafkaBrokers(env);
  const redis = loadRedisConfig(env);
  return Object.freeze({
    redis,
    orderWrites: {
      replicas: readInt(env, "ORDER_WRITE_REPLICAS", redis.mode === "cluster" ? 1 : 0, {
        min: 0,
        max: 5,
      }),
      timeoutMs: readInt(env, "ORDER_WRITE_REPLICA_TIMEOUT_MS", 500, { min: 10, max: 10_000 }),
    },
    auth: loadAuthConfig(env),
    bindHost: readBindHost(env),
    port: readPort(env, "GATEWAY_PORT", 8080),
    rateLimit: readInt(env, "RATE_LIMIT_REQUESTS", 600, { min: 1 }),
    rateLimitWindowMs: readInt(env, "RATE_LIMIT_WINDOW_MS", 60_000, { min: 100 }),
    ...loadAuthFailureConfig(env, "GATEWAY_CLIENT_ADDRESS_HEADER"),
    maxBodyBytes: readInt(env, "GATEWAY_MAX_BODY_BYTES", 64 * 1024, { min: 1 }),
    maxHeaderBytes: readInt(env, "GATEWAY_MAX_HEADER_BYTES", 16 * 1024, {
      min: 1024,
      max: 1024 * 1024,
    }),
    maxQueryBytes: readInt(env, "GATEWAY_MAX_QUERY_BYTES", 2048, { min: 64, max: 64 * 1024 }),
    corsOrigins: readCorsOrigins(env),
    trackingNodeTtlMs: readInt(env, "TRACKING_NODE_TTL_MS", 5_000, { min: 100 }),
    trackingRingRefreshMs: readInt(env, "TRACKING_RING_REFRESH_MS", 1_000, { min: 50 }),
    ...(kafkaBrokers ? { kafkaBrokers } : {}),
    nodeId: readNodeId(env, "GATEWAY_NODE_ID"),
    outboxRelayEveryMs: readInt(env, "OUTBOX_RELAY_EVERY_MS", 100, { min: 10, max: 10_000 }),
    outboxLeaseMs: readInt(env, "OUTBOX_LEASE_MS", 5_000, { min: 300, max: 600_000 }),
    orderServiceUrl:
      readUrl(env, "ORDER_SERVICE_URL", ["http:", "https:"]) ?? "http://127.0.0.1:8070",
    searchServiceUrl:
      readUrl(env, "SEARCH_SERVICE_URL", ["http:", "https:"]) ?? "http://127.0.0.1:8070",
    searchCacheSeconds: readInt(env, "SEARCH_CACHE_SECONDS", 60, { min: 1 }),
    upstreamTimeoutMs: readInt(env, "UPSTREAM_TIMEOUT_MS", 3_000, { min: 50, max: 60_000 }),
    upstreamMaxBodyBytes: readInt(env, "UPSTREAM_MAX_BODY_BYTES", 1024 * 1024, { min: 1024 }),
    upstreamBreakerFailures: readInt(env, "UPSTREAM_BREAKER_FAILURES", 5, { min: 1, max: 1_000 }),
    upstreamBreakerOpenMs: readInt(env, "UPSTREAM_BREAKER_OPEN_MS", 5_000, {
      min: 100,
      max: 600_000,
    }),
    searchStaleIfErrorSeconds: readInt(env, "SEARCH_STALE_IF_ERROR_SECONDS", 600, {
      min: 0,
      max: 86_400,
    }),
    idempotencyLeaseMarginMs: readInt(env, "IDEMPOTENCY_LEASE_MARGIN_MS", 2_000, {
      min: 100,
      max: 60_000,
    }),
    candidateFreshMs: readInt(env, "DISPATCH_CANDIDATE_FRESH_MS", 60_000, { min: 1_000 }),
    candidateMaxRadiusM: readInt(env, "DISPATCH_MAX_RADIUS_M", DISPATCH_DEFAULTS.maxRadiusM, {
      min: 100,
      max: 50_000,
    }),
    candidateMaxCount: readInt(env, "DISPATCH_MAX_CANDIDATES", DISPATCH_DEFAULTS.maxCount, {
      min: 1,
      max: 500,
    }),
    orderEndedTtlMs: readInt(env, "ORDER_ENDED_TTL_MS", 86_400_000, {
      min: 1_000,
      max: 90 * 86_400_000,
    }),
  });
}
