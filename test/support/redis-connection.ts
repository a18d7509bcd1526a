import { afterAll, beforeAll } from "bun:test";
import pino from "pino";
import { createRedisConnection, type RedisConnection } from "../../core/redis/client";
import { type RedisServer, startRedis } from "./redis-server";

export interface RedisConnectionFixture {
  readonly redis: RedisServer;
  readonly connection: RedisConnection;
}

/** For a test file: a redis-server and the project's own connection to it, ready before the tests. */
export function useRedisConnection(name: string): RedisConnectionFixture {
  const fixture = {} as { redis: RedisServer; connection: RedisConnection };
  beforeAll(async () => {
    fixture.redis = await startRedis();
    fixture.connection = createRedisConnection(
      { mode: "standalone", url: fixture.redis.url },
      name,
      pino({ level: "silent" }),
    );
    await fixture.connection.waitReady(5_000);
  });
  afterAll(async () => {
    await fixture.connection?.close();
    await fixture.redis?.stop();
  });
  return fixture;
}
