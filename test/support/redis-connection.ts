import { afterAll, beforeAll } from "bun:test";
import { Redis } from "ioredis";
import pino from "pino";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { cleanUpAll } from "./clean-up";
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
    fixture.connection = await connectRedis(
      { mode: "standalone", url: fixture.redis.url },
      name,
      pino({ level: "silent" }),
    );
  });
  afterAll(() =>
    cleanUpAll(
      () => fixture.connection?.close(),
      () => fixture.redis?.stop(),
    ),
  );
  return fixture;
}

export interface RedisClientFixture {
  readonly redis: RedisServer;
  /** A plain ioredis client: what a test seeds and inspects Redis with. */
  readonly db: Redis;
}

/** How long the client's QUIT may wait for replies still due (a restarted server) before it is cut. */
const QUIT_WAIT_MS = 2_000;

/**
 * For a test file: a redis-server and a plain ioredis client of it, ready
 * before the tests. After them, in this order: `stopFirst` (what the file
 * started against this Redis: gateways, nodes, ingest processes, so none
 * sees it vanish while it drains), the client's QUIT, the server. File-level
 * afterAll hooks run in the order they are declared, and this one is
 * declared before the file's own: hence `stopFirst` rather than a hook of
 * the file's.
 */
export function useRedisClient(
  options: { stopFirst?: () => Promise<unknown> } = {},
): RedisClientFixture {
  const fixture = {} as { redis: RedisServer; db: Redis };
  beforeAll(async () => {
    fixture.redis = await startRedis();
    fixture.db = new Redis(fixture.redis.url);
    // Its commands fail on their own while a test has the server down; unheard,
    // each reconnect attempt would also print "Unhandled error event".
    fixture.db.on("error", () => undefined);
  });
  afterAll(() =>
    cleanUpAll(
      () => options.stopFirst?.(),
      async () => {
        if (!fixture.db) return;
        const cut = setTimeout(() => fixture.db.disconnect(), QUIT_WAIT_MS);
        // Closed already (a test quit it, or the server is gone): nothing left to wait for.
        await fixture.db.quit().catch(() => undefined);
        clearTimeout(cut);
        fixture.db.disconnect();
      },
      () => fixture.redis?.stop(),
    ),
  );
  return fixture;
}
