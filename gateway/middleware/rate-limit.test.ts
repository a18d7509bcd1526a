import { afterAll, beforeAll, expect, test } from "bun:test";
import { Hono } from "hono";
import pino from "pino";
import { createRedisConnection, type RedisConnection } from "../../core/redis/client";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import type { GatewayEnv } from "../context";
import { createErrorHandler } from "./error-handler";
import { rateLimit } from "./rate-limit";

let redis: RedisServer;
let connection: RedisConnection;
const logger = pino({ level: "silent" });

beforeAll(async () => {
  redis = await startRedis();
  connection = createRedisConnection(
    { mode: "standalone", url: redis.url },
    "rate-limit-test",
    logger,
  );
  await connection.waitReady(5_000);
});

afterAll(async () => {
  await connection?.close();
  await redis?.stop();
});

test("counts per identity in a fixed window: RateLimit-* headers, then 429 with Retry-After until the window turns", async () => {
  let now = 1_800_000_000_000;
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(logger));
  app.use(async (c, next) => {
    c.set("identity", { sub: c.req.header("x-sub") ?? "", role: "customer", exp: 9_999_999_999 });
    await next();
  });
  app.use(rateLimit({ client: connection.client, limit: 2, windowMs: 10_000, now: () => now }));
  app.get("/", (c) => c.text("ok"));
  const sub = uniqueId("caller");
  const call = () => app.request("/", { headers: { "x-sub": sub } });
  const first = await call();
  expect([
    first.status,
    first.headers.get("ratelimit-limit"),
    first.headers.get("ratelimit-remaining"),
    first.headers.get("ratelimit-reset"),
  ]).toEqual([200, "2", "1", "10"]);
  expect((await call()).status).toBe(200);
  now += 4_000;
  const limited = await call();
  expect(limited.status).toBe(429);
  expect(limited.headers.get("retry-after")).toBe("6");
  expect((await app.request("/", { headers: { "x-sub": uniqueId("other") } })).status).toBe(200);
  now += 6_000;
  expect((await call()).status).toBe(200);
  expect(() => rateLimit({ client: connection.client, limit: 0, windowMs: 1 })).toThrow(
    /limit must be a positive integer/,
  );
});
