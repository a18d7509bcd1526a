import { expect, test } from "bun:test";
import { Hono } from "hono";
import pino from "pino";
import { takeRateLimit } from "../../core/redis/scripts";
import { useRedisConnection } from "../../test/support/redis-connection";
import { uniqueId } from "../../test/support/tokens";
import type { GatewayEnv } from "../context";
import { createErrorHandler } from "./error-handler";
import { rateLimit } from "./rate-limit";

const fixture = useRedisConnection("rate-limit-test");
const logger = pino({ level: "silent" });

/** An app whose requests carry a customer identity named by their `x-sub` header. */
function appWithIdentity(): Hono<GatewayEnv> {
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(logger));
  app.use(async (c, next) => {
    c.set("identity", { sub: c.req.header("x-sub") ?? "", role: "customer", exp: 9_999_999_999 });
    await next();
  });
  return app;
}

test("counts per identity in a fixed window: RateLimit-* headers, then 429 with Retry-After until the window turns", async () => {
  let now = 1_800_000_000_000;
  const app = appWithIdentity();
  let refused = 0;
  app.use(
    rateLimit({
      client: fixture.connection.client,
      limit: 2,
      windowMs: 10_000,
      now: () => now,
      onRefused: () => refused++,
    }),
  );
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
  expect(refused).toBe(1);
  expect((await app.request("/", { headers: { "x-sub": uniqueId("other") } })).status).toBe(200);
  now += 6_000;
  expect((await call()).status).toBe(200);
  expect(() => rateLimit({ client: fixture.connection.client, limit: 0, windowMs: 1 })).toThrow(
    /limit must be a positive integer/,
  );
});

test("a read-ahead route runs while the count is on its way and answers once admitted; over the limit it is 429 with Retry-After, even from a route that did not wait", async () => {
  const app = appWithIdentity();
  let refused = 0;
  app.use(
    rateLimit({
      client: fixture.connection.client,
      limit: 1,
      windowMs: 60_000,
      onRefused: () => refused++,
      readAhead: (c) => c.req.path !== "/counted-first",
    }),
  );
  const admittedAtEntry: (string | undefined)[] = [];
  const stateOf = async (admitted: Promise<void> | undefined) =>
    admitted === undefined
      ? undefined
      : Promise.race([
          admitted.then(
            () => "admitted",
            () => "refused",
          ),
          Promise.resolve("pending"),
        ]);
  app.get("/waits", async (c) => {
    admittedAtEntry.push(await stateOf(c.get("admitted")));
    await c.get("admitted");
    return c.text("read");
  });
  const written: string[] = [];
  app.get("/does-not-wait", (c) => {
    written.push(c.req.header("x-sub") ?? "");
    return c.text("read");
  });
  app.get("/counted-first", async (c) => {
    admittedAtEntry.push(await stateOf(c.get("admitted")));
    return c.text("read");
  });
  const call = (path: string, sub: string) => app.request(path, { headers: { "x-sub": sub } });
  // Another gateway node spends an identity's budget: this node does not know it is spent.
  const spentElsewhere = (sub: string) =>
    takeRateLimit(fixture.connection.client, `customer:${sub}`, 1, 60_000, Date.now());

  const waiter = uniqueId("waiter");
  const first = await call("/waits", waiter);
  expect([first.status, first.headers.get("ratelimit-remaining")]).toEqual([200, "0"]);
  const spentHere = await call("/waits", waiter);
  expect([spentHere.status, (await spentHere.json()).error.code]).toEqual([429, "rate_limited"]);
  const refusedHere = uniqueId("refused");
  await spentElsewhere(refusedHere);
  const second = await call("/waits", refusedHere);
  expect([second.status, (await second.json()).error.code]).toEqual([429, "rate_limited"]);
  expect(Number(second.headers.get("retry-after"))).toBeGreaterThan(0);
  // The route ran before the count was in: its own reads could go to Redis in the same turn;
  // except for the identity this node saw spend its budget (counted first, refused unread).
  expect(admittedAtEntry).toEqual(["pending", "pending"]);

  const hasty = uniqueId("hasty");
  expect((await call("/does-not-wait", hasty)).status).toBe(200);
  const spent = uniqueId("spent");
  await spentElsewhere(spent);
  const held = await call("/does-not-wait", spent);
  expect([held.status, (await held.json()).error.code]).toEqual([429, "rate_limited"]);
  expect(held.headers.get("ratelimit-remaining")).toBe("0");
  expect(Number(held.headers.get("retry-after"))).toBeGreaterThan(0);
  expect(written).toEqual([hasty, spent]);
  expect(refused).toBe(3);

  // Any other route is counted before it runs (it never sees a pending count).
  const other = uniqueId("other");
  expect((await call("/counted-first", other)).status).toBe(200);
  expect((await call("/counted-first", other)).status).toBe(429);
  expect(admittedAtEntry).toEqual(["pending", "pending", undefined]);
});

test("while the counter's Redis is unreachable the request goes on uncounted (a route that needs Redis answers 503 itself)", async () => {
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(logger));
  app.use(async (c, next) => {
    c.set("identity", { sub: "someone", role: "customer", exp: 9_999_999_999 });
    await next();
  });
  let unchecked = 0;
  app.use(
    rateLimit({
      client: fixture.connection.client,
      limit: 2,
      windowMs: 10_000,
      onUnchecked: () => unchecked++,
    }),
  );
  app.get("/", (c) => c.text("ok"));
  app.get("/needs-redis", async (c) => c.text(String(await fixture.connection.client.get("k"))));
  await fixture.redis.kill();
  try {
    const open = await app.request("/");
    expect(open.status).toBe(200);
    expect(open.headers.get("ratelimit-limit")).toBeNull();
    expect(unchecked).toBe(1);
    expect((await app.request("/needs-redis")).status).toBe(503);
  } finally {
    await fixture.redis.restart();
    await fixture.connection.waitReady(5_000);
  }
});

test("an identity that has spent its budget is counted before its read-ahead route runs, until its window resets; others still read ahead, and the node remembers at most maxSpentIdentities", async () => {
  let now = 1_800_000_000_000;
  const app = appWithIdentity();
  app.use(
    rateLimit({
      client: fixture.connection.client,
      limit: 1,
      windowMs: 10_000,
      now: () => now,
      readAhead: () => true,
      maxSpentIdentities: 2,
    }),
  );
  // Each entry: who, and whether the count was still on its way when the route began its reads.
  const ran: string[] = [];
  app.get("/read", async (c) => {
    const admitted = c.get("admitted");
    const pending = await Promise.race([
      admitted.then(
        () => false,
        () => false,
      ),
      Promise.resolve(true),
    ]);
    ran.push(`${c.req.header("x-sub")}:${pending ? "ahead" : "after"}`);
    await admitted;
    return c.text("read");
  });
  const call = async (sub: string) =>
    (await app.request("/read", { headers: { "x-sub": sub } })).status;
  const [a, b, c] = [uniqueId("a"), uniqueId("b"), uniqueId("c")];

  // a's one request reads ahead and spends the budget: its next ones never start their reads.
  expect([await call(a), await call(a), await call(a)]).toEqual([200, 429, 429]);
  expect(ran).toEqual([`${a}:ahead`]);
  expect(await call(b)).toBe(200);
  expect(ran).toEqual([`${a}:ahead`, `${b}:ahead`]);

  // The window resets: a reads ahead again.
  now += 10_000;
  ran.length = 0;
  expect([await call(a), await call(a)]).toEqual([200, 429]);
  expect(ran).toEqual([`${a}:ahead`]);

  // b and c spend theirs: a, the oldest of three, is forgotten (at most 2 remembered), so its
  // next refusal reads ahead once more (and is still refused), then it is remembered again.
  expect([await call(b), await call(c)]).toEqual([200, 200]);
  expect([await call(a), await call(a), await call(c)]).toEqual([429, 429, 429]);
  expect(ran).toEqual([`${a}:ahead`, `${b}:ahead`, `${c}:ahead`, `${a}:ahead`]);
});
