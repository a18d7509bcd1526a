import { ConfigError, type Env, readInt, readPort, readString, readUrl } from "../core/config/env";
import {
  type AuthConfig,
  type AuthFailureConfig,
  loadAuthConfig,
  loadAuthFailureConfig,
  loadRedisConfig,
  type RedisConfig,
  readBindHost,
  readLiveAgeMs,
} from "../core/config/shared-config";
import { DEFAULT_DRAIN_TIMEOUT_MS, DRAIN_STEP_WAIT_MS } from "../core/lifecycle/shutdown";

export interface TrackingConfig extends AuthFailureConfig {
  readonly redis: RedisConfig;
  readonly auth: AuthConfig;
  readonly bindHost: string;
  readonly port: number;
  readonly nodeId: string;
  /**
   * Where clients reach this node on the public edge (sent in `moved` frames
   * and by the gateway; clients append /v1/orders/{id}/track), e.g.
   * wss://edge.example.com/tracking/t1 behind the shipped balancer.
   */
  readonly publicUrl: string;
  /** The path of `publicUrl` ("" when none): the node also serves its routes under it. */
  readonly publicPath: string;
  readonly heartbeatMs: number;
  /** The ring's tick: must be the same on every node and gateway (TRACKING_RING_REFRESH_MS). */
  readonly ringRefreshMs: number;
  /** A node silent for this long leaves every ring. */
  readonly nodeTtlMs: number;
  /** Send buffer above which a socket gets only the newest position (conflation). */
  readonly conflateAboveBytes: number;
  /** Send buffer above which, or congestion longer than which, a socket is closed. */
  readonly closeAboveBytes: number;
  readonly closeAfterStuckMs: number;
  /** An order's Redis subscription lingers this long after its last watcher leaves. */
  readonly unsubscribeAfterMs: number;
  /** Largest frame a client may send (clients send none); the engine refuses bigger ones unbuffered. */
  readonly maxMessageBytes: number;
  /** Every socket is pinged this often; one that has not answered the previous ping is dropped. */
  readonly pingIntervalMs: number;
  /** Open sockets per customer, rider or restaurant token identity on this node. */
  readonly maxSocketsPerUser: number;
  /** Open sockets per dispatcher or ops identity on this node (consoles watch many orders). */
  readonly maxSocketsPerStaff: number;
  /** Watch requests per user identity on this node per window; past it 429 before the order is read. */
  readonly maxWatchAttemptsPerUser: number;
  /** The same for dispatcher and ops identities (consoles follow many orders). */
  readonly maxWatchAttemptsPerStaff: number;
  readonly watchAttemptsWindowMs: number;
  /** Request line plus headers of a watch request; over it 431 in the error shape. */
  readonly maxHeaderBytes: number;
  /**
   * The ingest's live-age bound: after it a rider's lower seq is a restart,
   * not a replay, and a stored position is too old to be a snapshot.
   */
  readonly seqRestartAfterMs: number;
}

/** Bun's own parser limit is raised to this, so requests up to it get the JSON 431. */
export const PARSER_HEADER_LIMIT_BYTES = 64 * 1024;

/** Reads and checks a tracking node's configuration; throws ConfigError naming a bad variable. */
export function loadTrackingConfig(env: Env): TrackingConfig {
  const port = readPort(env, "TRACKING_PORT", 8090);
  const nodeId = readString(env, "TRACKING_NODE_ID", "t1");
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(nodeId))
    throw new ConfigError("TRACKING_NODE_ID", "must be 1-64 of A-Z a-z 0-9 . _ -", nodeId);
  const publicUrl = (
    readUrl(env, "TRACKING_PUBLIC_URL", ["ws:", "wss:"]) ?? `ws://127.0.0.1:${port}`
  ).replace(/\/+$/, "");
  const { pathname, search, hash } = new URL(publicUrl);
  if (search || hash)
    throw new ConfigError("TRACKING_PUBLIC_URL", "must have no query or fragment", publicUrl);
  const nodeTtlMs = readInt(env, "TRACKING_NODE_TTL_MS", 5_000, { min: 100 });
  return Object.freeze({
    redis: loadRedisConfig(env),
    auth: loadAuthConfig(env),
    bindHost: readBindHost(env),
    port,
    nodeId,
    publicUrl,
    publicPath: pathname === "/" ? "" : pathname,
    heartbeatMs: readHeartbeatMs(env, nodeTtlMs),
    ringRefreshMs: readInt(env, "TRACKING_RING_REFRESH_MS", 1_000, { min: 50 }),
    nodeTtlMs,
    conflateAboveBytes: readInt(env, "TRACKING_CONFLATE_ABOVE_BYTES", 16 * 1024, { min: 1 }),
    closeAboveBytes: readInt(env, "TRACKING_CLOSE_ABOVE_BYTES", 1024 * 1024, { min: 1 }),
    closeAfterStuckMs: readInt(env, "TRACKING_CLOSE_AFTER_STUCK_MS", 30_000, { min: 1 }),
    unsubscribeAfterMs: readInt(env, "TRACKING_UNSUBSCRIBE_AFTER_MS", 2_000, { min: 0 }),
    maxMessageBytes: readInt(env, "TRACKING_MAX_MESSAGE_BYTES", 1024, { min: 0, max: 65_536 }),
    pingIntervalMs: readInt(env, "TRACKING_PING_INTERVAL_MS", 25_000, {
      min: 500,
      max: 600_000,
    }),
    maxSocketsPerUser: readInt(env, "TRACKING_MAX_SOCKETS_PER_USER", 10, {
      min: 1,
      max: 100_000,
    }),
    maxSocketsPerStaff: readInt(env, "TRACKING_MAX_SOCKETS_PER_STAFF", 1_000, {
      min: 1,
      max: 1_000_000,
    }),
    maxWatchAttemptsPerUser: readInt(env, "TRACKING_MAX_WATCH_ATTEMPTS_PER_USER", 30, {
      min: 1,
      max: 1_000_000,
    }),
    maxWatchAttemptsPerStaff: readInt(env, "TRACKING_MAX_WATCH_ATTEMPTS_PER_STAFF", 2_000, {
      min: 1,
      max: 10_000_000,
    }),
    watchAttemptsWindowMs: readInt(env, "TRACKING_WATCH_ATTEMPTS_WINDOW_MS", 10_000, {
      min: 100,
      max: 3_600_000,
    }),
    maxHeaderBytes: readInt(env, "TRACKING_MAX_HEADER_BYTES", 8 * 1024, {
      min: 1024,
      max: PARSER_HEADER_LIMIT_BYTES - 1024,
    }),
    seqRestartAfterMs: readLiveAgeMs(env),
    ...loadAuthFailureConfig(env, "TRACKING_CLIENT_ADDRESS_HEADER"),
  });
}

/**
 * At least two beats per node TTL: a beat as slow as the TTL drops the node
 * from every ring (and lets its id's claim lapse) whenever one comes late.
 */
function readHeartbeatMs(env: Env, nodeTtlMs: number): number {
  const value = readInt(env, "TRACKING_HEARTBEAT_MS", 1_000, { min: 50 });
  if (value * 2 > nodeTtlMs)
    throw new ConfigError(
      "TRACKING_HEARTBEAT_MS",
      `must be at most half of TRACKING_NODE_TTL_MS (${nodeTtlMs}): one late beat would drop the node from every ring`,
      String(value),
    );
  return value;
}

/** What a loaded host or a slow WebSocket close may add to a drain's own worst case. */
const DRAIN_SLACK_MS = 5_000;

/**
 * How long a drain lets the watch requests under way finish once the
 * watchers are sent away (a watch request normally takes a Redis read or
 * two: milliseconds); past it they are closed unanswered, so one stuck on a
 * hanging Redis cannot hold the drain until its cut. Sized from what a
 * watch request needs, like the gateway's and the ingest's waits for their
 * requests, not from DRAIN_STEP_WAIT_MS: it equals it only by chance.
 */
export const SERVER_STOP_WAIT_MS = 1_000;

/**
 * The node's drain cut: 15 s, or longer when its TTL makes the drain's own
 * worst case longer. With Redis hanging, ring leave serves until the last
 * beat sent is a TTL and two ticks old (its last sleep may overrun that by
 * a tick), then the live figures' stop, the watch requests under way and
 * the connection's QUIT each wait their bound; a cut before that would end
 * a clean drain in exit 1.
 */
export function trackingDrainTimeoutMs(
  config: Pick<TrackingConfig, "nodeTtlMs" | "ringRefreshMs">,
): number {
  const worstCase =
    config.nodeTtlMs +
    3 * config.ringRefreshMs +
    // The live figures' stop and QUIT: a drain step each.
    2 * DRAIN_STEP_WAIT_MS +
    SERVER_STOP_WAIT_MS;
  return Math.max(DEFAULT_DRAIN_TIMEOUT_MS, worstCase + DRAIN_SLACK_MS);
}
