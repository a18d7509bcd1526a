import { expect, test } from "bun:test";
import { Writable } from "node:stream";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import pino from "pino";
import type { Role } from "../../core/auth/identity";
import { createTokenVerifier } from "../../core/auth/token-verifier";
import { keys } from "../../core/redis/keys";
import { createTrackingRing } from "../../core/tracking-ring/tracking-ring";
import { seedOrder } from "../../test/support/orders";
import { useRedisConnection } from "../../test/support/redis-connection";
import { TEST_JWT_SECRET, testToken, uniqueId } from "../../test/support/tokens";
import type { GatewayEnv } from "../context";
import { authenticate } from "../middleware/authenticate";
import { createErrorHandler } from "../middleware/error-handler";
import { rateLimit } from "../middleware/rate-limit";
import { isStatusRead, orderTrackingRoutes } from "./order-tracking";

const fixture = useRedisConnection("order-tracking-test");
const TICK = 1_000;
const TTL = 5_000;
const silent = pino({ level: "silent" });

/** A Hono app with the gateway's error handler and token check, for the routes under test. */
function authenticatedApp(logger = silent) {
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(logger));
  app.use(requestId());
  app.use(authenticate(createTokenVerifier({ secret: TEST_JWT_SECRET })));
  return app;
}

test("the track lookup answers from the tick now running: a ring whose timer is a tick late never names a node that has just left", async () => {
  const { connection } = fixture;
  const { client } = connection;
  const tickStart = 7_000_000 * TICK;
  // The ring's own timer is stopped: the test plays a timer that has not fired yet.
  const clock = { now: tickStart + 100 };
  const ring = createTrackingRing({
    connection,
    ttlMs: TTL,
    refreshMs: TICK,
    logger: silent,
    now: () => clock.now,
  });
  ring.stop();
  const [a, b] = [uniqueId("t"), uniqueId("t")];
  for (const id of [a, b]) {
    await client.zadd(keys.trackingNodes(), tickStart, id);
    await client.hset(keys.trackingNodeUrls(), id, `ws://${id}.test`);
  }
  await ring.refresh();
  const app = authenticatedApp();
  app.route("/", orderTrackingRoutes({ connection, ring, orderEndedTtlMs: 60_000 }));
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(client, { orderId, customerId, riderId: uniqueId("rider") });
  const headers = { authorization: `Bearer ${await testToken(customerId, "customer")}` };
  const lookUp = async () =>
    (await (await app.request(`/v1/orders/${orderId}/track`, { headers })).json()) as {
      node: string;
      url: string;
    };

  const owner = (await lookUp()).node;
  const other = owner === a ? b : a;
  // The owner drains: listed with a long-gone beat, it is out of every ring from the next tick.
  await client.zadd(keys.trackingNodes(), tickStart - 10 * TTL, owner);
  clock.now = tickStart + TICK + 5;
  expect(ring.ownerOf(orderId)?.id).toBe(owner);
  expect(await lookUp()).toEqual({
    orderId,
    node: other,
    url: `ws://${other}.test/v1/orders/${orderId}/track`,
  } as { node: string; url: string });
  expect(ring.isCurrent()).toBe(true);
});

test("a status read goes to Redis with its rate-limit count: answered with the RateLimit headers; over the limit 429 first, whatever its record says", async () => {
  const { connection } = fixture;
  const ring = createTrackingRing({ connection, ttlMs: TTL, refreshMs: TICK, logger: silent });
  ring.stop();
  const app = authenticatedApp();
  app.use(
    rateLimit({ client: connection.client, limit: 2, windowMs: 60_000, readAhead: isStatusRead }),
  );
  app.route("/", orderTrackingRoutes({ connection, ring, orderEndedTtlMs: 60_000 }));
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(connection.client, { orderId, customerId });
  const headers = { authorization: `Bearer ${await testToken(customerId, "customer")}` };
  const read = (id: string) => app.request(`/v1/orders/${id}/status`, { headers });

  const answer = await read(orderId);
  expect([answer.status, answer.headers.get("ratelimit-remaining")]).toEqual([200, "1"]);
  expect(((await answer.json()) as { orderId: string }).orderId).toBe(orderId);
  const missing = await read(uniqueId("no-such-order"));
  expect([missing.status, missing.headers.get("ratelimit-remaining")]).toEqual([404, "0"]);
  for (const id of [orderId, uniqueId("no-such-order")]) {
    const refused = await read(id);
    expect([
      refused.status,
      ((await refused.json()) as { error: { code: string } }).error.code,
    ]).toEqual([429, "rate_limited"]);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  }
});

test("an identity past its limit has its status reads counted first: refused with no record read reaching Redis, until its window resets", async () => {
  const { connection } = fixture;
  const ring = createTrackingRing({ connection, ttlMs: TTL, refreshMs: TICK, logger: silent });
  ring.stop();
  let now = 1_900_000_000_000;
  const app = authenticatedApp();
  app.use(
    rateLimit({
      client: connection.client,
      limit: 2,
      windowMs: 60_000,
      now: () => now,
      readAhead: isStatusRead,
    }),
  );
  app.route("/", orderTrackingRoutes({ connection, ring, orderEndedTtlMs: 60_000 }));
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(connection.client, { orderId, customerId });
  const headers = { authorization: `Bearer ${await testToken(customerId, "customer")}` };
  const read = async () => (await app.request(`/v1/orders/${orderId}/status`, { headers })).status;
  /** Calls of each command Redis has run so far (INFO commandstats). */
  const calls = async () => {
    const stats = await connection.client.info("commandstats");
    const of = (command: string) =>
      Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    return { hmget: of("hmget"), evalsha: of("evalsha") };
  };

  const before = await calls();
  expect([await read(), await read()]).toEqual([200, 200]);
  const spent = await calls();
  expect(spent.hmget - before.hmget).toBe(2);
  const refusals = [];
  for (let n = 0; n < 5; n++) refusals.push(await read());
  expect(refusals).toEqual([429, 429, 429, 429, 429]);
  const after = await calls();
  // Each refusal was counted (one script call) and read nothing.
  expect([after.hmget - spent.hmget, after.evalsha - spent.evalsha]).toEqual([0, 5]);

  // The next window: the read goes out with its count again.
  now += 60_000;
  expect(await read()).toBe(200);
  expect((await calls()).hmget - after.hmget).toBe(1);
});

test("the track lookup answers only those a tracking node lets watch: the order's restaurant reads its status but is refused the track 403, as the node refuses its watch", async () => {
  const { connection } = fixture;
  const ring = createTrackingRing({ connection, ttlMs: TTL, refreshMs: TICK, logger: silent });
  ring.stop();
  const node = uniqueId("t");
  await connection.client.zadd(keys.trackingNodes(), Date.now(), node);
  await connection.client.hset(keys.trackingNodeUrls(), node, `ws://${node}.test`);
  await ring.refresh();
  const app = authenticatedApp();
  app.route("/", orderTrackingRoutes({ connection, ring, orderEndedTtlMs: 60_000 }));
  const orderId = uniqueId("order");
  const [customerId, riderId] = [uniqueId("cust"), uniqueId("rider")];
  // seedOrder's restaurant is rest-1.
  await seedOrder(connection.client, { orderId, customerId, riderId });
  const ask = async (what: "status" | "track", sub: string, role: Role) => {
    const token = await testToken(sub, role, role === "rider" ? "london" : undefined);
    const headers = { authorization: `Bearer ${token}` };
    const answer = await app.request(`/v1/orders/${orderId}/${what}`, { headers });
    const body = (await answer.json()) as { error?: { code: string } };
    return [answer.status, body.error?.code];
  };

  expect(await ask("status", "rest-1", "restaurant")).toEqual([200, undefined]);
  expect(await ask("track", "rest-1", "restaurant")).toEqual([403, "forbidden"]);
  // Another restaurant does not know the order: the missing order's 404, on both routes.
  expect(await ask("track", "rest-2", "restaurant")).toEqual([404, "not_found"]);
  for (const [sub, role] of [
    [customerId, "customer"],
    [riderId, "rider"],
    ["disp-1", "dispatcher"],
    ["ops-1", "ops"],
  ] as const)
    expect(await ask("track", sub, role)).toEqual([200, undefined]);
});

test("a damaged order record is a 500 whose body says only internal error: what the record holds goes to the log under the request id, never to the caller", async () => {
  const { connection } = fixture;
  const ring = createTrackingRing({ connection, ttlMs: TTL, refreshMs: TICK, logger: silent });
  ring.stop();
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const app = authenticatedApp(pino(sink));
  app.route("/", orderTrackingRoutes({ connection, ring, orderEndedTtlMs: 60_000 }));
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  // A status no gateway script writes: another system (or a bug) wrote the record.
  await seedOrder(connection.client, { orderId, customerId, status: "LEGACY_BILLING_HOLD" });
  const headers = { authorization: `Bearer ${await testToken(customerId, "customer")}` };

  for (const what of ["status", "track"]) {
    const answer = await app.request(`/v1/orders/${orderId}/${what}`, { headers });
    const text = await answer.text();
    const requestId = answer.headers.get("x-request-id");
    expect([what, answer.status, JSON.parse(text).error.message]).toEqual([
      what,
      500,
      "internal error",
    ]);
    expect(text).not.toContain("LEGACY_BILLING_HOLD");
    const logged = lines.find((line) => requestId && line.includes(requestId)) ?? "";
    expect(logged).toContain("LEGACY_BILLING_HOLD");
  }
});
