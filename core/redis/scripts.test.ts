import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Cluster } from "ioredis";
import pino from "pino";
import {
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { createRedisConnection, type RedisConnection } from "./client";
import { keys } from "./keys";
import { pruneStaleRiders } from "./scripts";

const logger = pino({ level: "silent" });
let server: RedisServer;
let cluster: RedisCluster;
const connections: Record<"standalone" | "cluster", RedisConnection | undefined> = {
  standalone: undefined,
  cluster: undefined,
};

beforeAll(async () => {
  [server, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  connections.standalone = createRedisConnection(
    { mode: "standalone", url: server.url },
    "test",
    logger,
  );
  connections.cluster = createRedisConnection(
    { mode: "cluster", nodes: cluster.nodes },
    "test",
    logger,
  );
  await Promise.all([
    connections.standalone.waitReady(5_000),
    connections.cluster.waitReady(10_000),
  ]);
});

afterAll(async () => {
  await connections.standalone?.close();
  await connections.cluster?.close();
  await Promise.all([server?.stop(), cluster?.stop()]);
});

describe.each(["standalone", "cluster"] as const)("prune-stale-riders.lua on %s", (mode) => {
  test("removes riders last seen at or before the cutoff from both sets, in batches", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    const now = 1_000_000;
    for (let i = 0; i < 25; i++) {
      const rider = `r${i}`;
      // Riders 0-19 were last seen long ago, 20-24 just now.
      const seen = i < 20 ? now - 600_000 : now;
      await client.geoadd(keys.cityRiders(city), -0.12, 51.5, rider);
      await client.zadd(keys.cityRidersSeen(city), seen, rider);
    }
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(15);
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(5);
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(0);
    expect((await client.zrange(keys.cityRiders(city), "0", "-1")).sort()).toEqual([
      "r20",
      "r21",
      "r22",
      "r23",
      "r24",
    ]);
    expect(await client.zcard(keys.cityRidersSeen(city))).toBe(5);
  });

  test("still works after Redis forgets the script (EVALSHA falls back to EVAL)", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const city = uniqueId("city").toLowerCase();
    await connection.client.zadd(keys.cityRidersSeen(city), 1, "old");
    await connection.client.geoadd(keys.cityRiders(city), "0", "0", "old");
    if (mode === "standalone") await connection.client.script("FLUSH");
    else
      await Promise.all(
        (connection.client as Cluster).nodes("master").map((node) => node.script("FLUSH")),
      );
    expect(await pruneStaleRiders(connection.client, city, 10, 100)).toBe(1);
  });
});
