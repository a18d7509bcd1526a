import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { RedisConfig } from "../config/shared-config";
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
  /** A new connection for SUBSCRIBE/SSUBSCRIBE (a subscribed connection cannot run commands). */
  createSubscriber(): Redis | Cluster;
  /** PUBLISH on standalone, SPUBLISH (one shard, not the whole cluster) in cluster mode. */
  readonly publishCommand: "publish" | "spublish";
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

/** Opens the process's Redis connection for standalone or Cluster mode. */
export function createRedisConnection(
  config: RedisConfig,
  name: string,
  logger: Logger,
): RedisConnection {
  polyfillTracingChannelHasSubscribers();
  const subscribers = new Set<Redis | Cluster>();
  const build = (): Redis | Cluster =>
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
          clusterRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
        })
      : new Redis(config.url, { ...COMMON_OPTIONS, connectionName: name });

  const base = build();
  watchConnection(base, logger.child({ redis: name }));
  const client = registerScripts(base);

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
    createSubscriber() {
      const subscriber = build();
      watchConnection(subscriber, logger.child({ redis: `${name}-subscriber` }));
      subscribers.add(subscriber);
      return subscriber;
    },
    async close() {
      const all = [base, ...subscribers];
      await Promise.all(all.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
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
