import { afterAll, beforeAll } from "bun:test";
import pino from "pino";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { cleanUpAll } from "./clean-up";
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from "./redis-server";

/**
 * For a test file of the Lua scripts: a redis-server and a three-master
 * Redis Cluster, each with the project's own connection (scripts
 * registered), ready before the tests: every script runs on both.
 */
export function useScriptConnections(): Record<
  "standalone" | "cluster",
  RedisConnection | undefined
> {
  const logger = pino({ level: "silent" });
  let server: RedisServer;
  let cluster: RedisCluster;
  const connections: Record<"standalone" | "cluster", RedisConnection | undefined> = {
    standalone: undefined,
    cluster: undefined,
  };
  beforeAll(async () => {
    [server, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
    [connections.standalone, connections.cluster] = await Promise.all([
      connectRedis({ mode: "standalone", url: server.url }, "test", logger),
      connectRedis({ mode: "cluster", nodes: cluster.nodes }, "test", logger, { waitMs: 10_000 }),
    ]);
  });
  afterAll(() =>
    cleanUpAll(
      () => connections.standalone?.close(),
      () => connections.cluster?.close(),
      () => server?.stop(),
      () => cluster?.stop(),
    ),
  );
  return connections;
}
