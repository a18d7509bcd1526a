import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { RedisConfig } from "../config/shared-config";
import { settleWithin } from "../lifecycle/settle-within";
import { DRAIN_STEP_WAIT_MS } from "../lifecycle/shutdown";
import { type AckedWriteOptions, type AckedWrites, createAckedWrites } from "./acked-writes";
import { type RedisClient, registerScripts } from "./scripts";
import { polyfillTracingChannelHasSubscribers } from "./tracing-channel-polyfill";

export interface RedisConnection {
  readonly mode: RedisConfig["mode"];
  /** Commands and pipelines, with the Lua scripts registered. */
  readonly client: RedisClient;
  /** True once connected; hot paths check it to fail fast instead of queueing. */
  isReady(): boolean;
  /** Resolves true once connected, false if `timeoutMs` passes first. */
  waitReady(timeoutMs: number): Promise<boolean>;
  /**
   * A new connection for SUBSCRIBE/SSUBSCRIBE (a subscribed connection cannot run commands).
   * Standalone, it does not subscribe again by itself after a reconnect: its user does, on 'ready'.
   */
  createSubscriber(): Redis | Cluster;
  /** PUBLISH on standalone, SPUBLISH (one shard, not the whole cluster) in cluster mode. */
  readonly publishCommand: "publish" | "spublish";
  /** Writes acknowledged only once enough replicas have them (order changes). */
  readonly acked: AckedWrites;
  /** QUITs every connection, cutting one whose replies are not in within DRAIN_STEP_WAIT_MS. */
  close(): Promise<void>;
}

// Fail fast while disconnected (callers answer 503 or report drops) and keep
// reconnecting in the background with a capped backoff. No per-command
// timeout: it costs a timer per command on the hot path; a connection that
// hangs is caught by the keep-alive and by callers' own deadlines.
const COMMON_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  keepAlive: 10_000,
  // Concurrent requests' commands share round trips (the gateway's many small reads).
  enableAutoPipelining: true,
  retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
  lazyConnect: false,
};

const SLOTS_REFRESH_MS = 1_000;
const SLOTS_REFRESH_ON_ERROR_MS = 200;

/** Opens the process's Redis connection for standalone or Cluster mode. */
export function createRedisConnection(
  config: RedisConfig,
  name: string,
  logger: Logger,
  options: { ackedWrites?: AckedWriteOptions } = {},
): RedisConnection {
  polyfillTracingChannelHasSubscribers();
  const subscribers = new Set<Redis | Cluster>();
  const build = (standaloneOverrides: RedisOptions): Redis | Cluster =>
    config.mode === "cluster"
      ? new Cluster([...config.nodes], {
          // The offline queue covers slot-map refreshes; isReady() guards hot paths.
          enableOfflineQueue: true,
          scaleReads: "master",
          enableAutoPipelining: true,
          shardedSubscribers: true,
          redisOptions: {
            maxRetriesPerRequest: COMMON_OPTIONS.maxRetriesPerRequest,
            keepAlive: COMMON_OPTIONS.keepAlive,
            connectionName: name,
          },
          // A command for a master that is down fails at once (callers answer 503 or report drops)
          // instead of being retried while the cluster fails it over; and a command in flight when
          // its master died may have run: sent again, a script would be a second change.
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          retryDelayOnTryAgain: 0,
          // Learn a promoted replica soon: every second, and at once when a node fails (below).
          slotsRefreshInterval: SLOTS_REFRESH_MS,
          clusterRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
        })
      : new Redis(config.url, { ...COMMON_OPTIONS, connectionName: name, ...standaloneOverrides });

  const open = (label: string, standaloneOverrides: RedisOptions = {}): Redis | Cluster => {
    const connection = build(standaloneOverrides);
    watchConnection(connection, logger.child({ redis: label }));
    if (connection instanceof Cluster) refreshSlotsOnNodeError(connection);
    return connection;
  };
  const base = open(name);
  const client = registerScripts(base);
  const ackedOptions = options.ackedWrites ?? { replicas: 0, timeoutMs: 0 };
  // WAIT holds up its connection: writes that wait for replicas get their own.
  const ackedClient = ackedOptions.replicas > 0 ? registerScripts(open(`${name}-acked`)) : client;
  const extra = ackedClient === client ? [] : [ackedClient];

  return {
    mode: config.mode,
    client,
    isReady: () => base.status === "ready",
    waitReady: (timeoutMs) =>
      base.status === "ready"
        ? Promise.resolve(true)
        : new Promise((resolve) => {
            const timer = setTimeout(() => {
              base.off("ready", onReady);
              resolve(false);
            }, timeoutMs);
            const onReady = () => {
              clearTimeout(timer);
              resolve(true);
            };
            base.once("ready", onReady);
          }),
    publishCommand: config.mode === "cluster" ? "spublish" : "publish",
    acked: createAckedWrites(ackedClient, ackedOptions, logger.child({ redis: name })),
    createSubscriber() {
      // The channel subscriber subscribes every channel it still wants when the connection is
      // ready again; ioredis's own re-subscribe would also bring back the channels dropped
      // while Redis was away (their UNSUBSCRIBE had no connection to go to), for good.
      // (In cluster mode the sharded subscribers re-subscribe from the cluster's own list,
      // which SUNSUBSCRIBE keeps: see channel-subscriber.)
      const subscriber = open(`${name}-subscriber`, { autoResubscribe: false });
      subscribers.add(subscriber);
      return subscriber;
    },
    async close() {
      const all = [base, ...extra, ...subscribers];
      // QUIT waits for the replies still due; a Redis that hangs never sends them.
      const quit = (c: Redis | Cluster) =>
        c.quit().then(
          () => true,
          () => false,
        );
      await Promise.all(
        all.map(async (c) => {
          if (!(await settleWithin(quit(c), DRAIN_STEP_WAIT_MS, false))) c.disconnect();
        }),
      );
    },
  };
}

/** How long connectRedis() waits for the connection to be ready by default. */
const CONNECT_WAIT_MS = 5_000;

/**
 * createRedisConnection, then up to `waitMs` for it to be ready: a tier's
 * start (and a test's set-up). Not ready by then: one warning, and the
 * connection is returned anyway, reconnecting in the background (a tier
 * serves meanwhile: /readyz says Redis is away, hot paths fail fast).
 */
export async function connectRedis(
  config: RedisConfig,
  name: string,
  logger: Logger,
  options: { ackedWrites?: AckedWriteOptions; waitMs?: number } = {},
): Promise<RedisConnection> {
  const connection = createRedisConnection(config, name, logger, options);
  if (!(await connection.waitReady(options.waitMs ?? CONNECT_WAIT_MS)))
    logger.warn("redis not reachable at start; serving anyway");
  return connection;
}

/**
 * A master that stops answering is about to be replaced by its replica:
 * re-read the slot map when a node's connection fails (at most once per
 * interval), so traffic follows the promotion as soon as the cluster has made it.
 */
function refreshSlotsOnNodeError(cluster: Cluster): void {
  let last = 0;
  cluster.on("node error", () => {
    if (Date.now() - last < SLOTS_REFRESH_ON_ERROR_MS) return;
    last = Date.now();
    cluster.refreshSlotsCache();
  });
}

/**
 * Logs the transitions (lost, back) rather than every reconnect attempt's
 * error; the listener also keeps an 'error' event from crashing the process.
 */
function watchConnection(connection: Redis | Cluster, logger: Logger): void {
  let up = false;
  connection.on("ready", () => {
    if (!up) logger.info("redis ready");
    up = true;
  });
  connection.on("error", (error: Error) => {
    if (up) logger.warn({ err: error }, "redis connection lost");
    up = false;
  });
}
