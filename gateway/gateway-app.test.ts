import { describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { keys } from "../core/redis/keys";
import { useGatewayAndTrackingNodes } from "../test/support/edge-nodes";
import { startTestGateway } from "../test/support/gateway";
import { seedOrder, trackingEventJson } from "../test/support/orders";
import { DROPOFF, PICKUP } from "../test/support/positions";
import { startRedis } from "../test/support/redis-server";
import { uniqueId } from "../test/support/tokens";
import { headerNames } from "../test/support/tracking";
import { waitUntil } from "../test/support/wait";

const fixture = useGatewayAndTrackingNodes({
  RATE_LIMIT_REQUESTS: "1000",
  GATEWAY_MAX_BODY_BYTES: "1024",
});

async function newOrder() {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  return { orderId, customerId, riderId };
}

describe("GET /v1/orders/:id/status", () => {
  test("the customer, the assigned rider, the restaurant, dispatchers and ops read it; unknown 404", async () => {
    const { orderId, customerId, riderId } = await newOrder();
    for (const as of [
      { sub: customerId, role: "customer" },
      { sub: riderId, role: "rider" },
      { sub: "rest-1", role: "restaurant" },
      { sub: "d1", role: "dispatcher" },
      { sub: "o1", role: "ops" },
    ] as const) {
      const response = await fixture.gateway.call(`/v1/orders/${orderId}/status`, { as });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        orderId,
        status: "ASSIGNED",
        version: 2,
        riderId,
        pickup: PICKUP,
        dropoff: DROPOFF,
      });
    }
    const missing = await fixture.gateway.call(`/v1/orders/${uniqueId("none")}/status`, {
      as: { sub: customerId, role: "customer" },
    });
    expect(missing.status).toBe(404);
    const body = (await missing.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe("not_found");
    expect(body.error.requestId).toBe(missing.headers.get("x-request-id") ?? "missing");
    expect(
      (
        await fixture.gateway.call(`/v1/orders/a%7Bb%7D/status`, {
          as: { sub: customerId, role: "customer" },
        })
      ).status,
    ).toBe(400);
  });

  test("no token or a bad one is 401 with the JSON error shape", async () => {
    const { orderId } = await newOrder();
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer nope" },
      { authorization: "Basic x" },
    ];
    for (const headers of attempts) {
      const response = await fixture.gateway.call(`/v1/orders/${orderId}/status`, { headers });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        "unauthenticated",
      );
    }
  });
});

/** What a refusal shows a caller: status, code, message and header names (not per-request values). */
async function refusalShape(response: Response) {
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  return {
    status: response.status,
    code: error.code,
    message: error.message,
    headers: headerNames(response),
  };
}

describe("someone else's order", () => {
  test("is answered exactly as a missing one on every order route, so no token can probe which ids exist", async () => {
    const { orderId } = await newOrder();
    const missingId = uniqueId("none");
    const strangers = [
      { sub: uniqueId("cust"), role: "customer" },
      { sub: uniqueId("rider"), role: "rider" },
      { sub: uniqueId("rest"), role: "restaurant" },
    ] as const;
    const requests: [string, RequestInit?][] = [
      ["status"],
      ["track"],
      // Each step, legal or not for the caller's role: no 403 or 409 before the order is theirs.
      ...["READY", "PICKED_UP", "DELIVERED", "CANCELLED", "ASSIGNED", "CONFIRMED"].map(
        (to): [string, RequestInit] => [
          "status",
          { method: "POST", body: JSON.stringify({ to, expectedVersion: 2 }) },
        ],
      ),
    ];
    for (const as of strangers)
      for (const [route, init] of requests) {
        const call = (id: string) =>
          fixture.gateway.call(`/v1/orders/${id}/${route}`, { ...init, as });
        const [theirs, missing] = await Promise.all([call(orderId), call(missingId)]);
        const shape = await refusalShape(theirs);
        expect({ as, route, init, ...shape }).toEqual({
          as,
          route,
          init,
          ...(await refusalShape(missing)),
        });
        expect(shape).toMatchObject({ status: 404, code: "not_found" });
      }
    const status = await fixture.gateway.call(`/v1/orders/${orderId}/status`, {
      as: { sub: "o1", role: "ops" },
    });
    expect(await status.json()).toMatchObject({ status: "ASSIGNED", version: 2 });
  });
});

describe("POST /v1/orders/:id/status", () => {
  const step = (
    orderId: string,
    to: string,
    expectedVersion: number,
    as: { sub: string; role: "rider" | "restaurant" | "dispatcher" | "ops" | "customer" },
  ) =>
    fixture.gateway.call(`/v1/orders/${orderId}/status`, {
      method: "POST",
      body: JSON.stringify({ to, expectedVersion }),
      as,
    });

  test("the whole delivery, each step by its actor, each publishing its event; the rider's active orders end with it", async () => {
    const { orderId, riderId } = await newOrder();
    const events: string[] = [];
    const subscriber = new Redis(fixture.redis.url);
    await subscriber.subscribe(keys.orderTrack(orderId));
    subscriber.on("message", (_c, message) => events.push(message));
    const ready = await step(orderId, "READY", 2, { sub: "rest-1", role: "restaurant" });
    expect(await ready.json()).toEqual({ orderId, status: "READY", version: 3, riderId });
    expect((await step(orderId, "PICKED_UP", 3, { sub: riderId, role: "rider" })).status).toBe(200);
    expect((await step(orderId, "DELIVERED", 4, { sub: riderId, role: "rider" })).status).toBe(200);
    await waitUntil(() => events.length === 3);
    expect(events.map(trackingEventJson)).toEqual([
      { orderId, status: { status: "READY", version: "3", riderId } },
      { orderId, status: { status: "PICKED_UP", version: "4", riderId } },
      { orderId, status: { status: "DELIVERED", version: "5", riderId } },
    ]);
    expect(await fixture.db.sismember(`rider:{${riderId}}:orders`, orderId)).toBe(0);
    subscriber.disconnect();
  });

  test("a stale version or an illegal step is 409, a wrong actor 403, and nothing changes", async () => {
    const { orderId, riderId, customerId } = await newOrder();
    const stale = await step(orderId, "READY", 1, { sub: "rest-1", role: "restaurant" });
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe("stale_version");
    const skip = await step(orderId, "DELIVERED", 2, { sub: riderId, role: "rider" });
    expect(skip.status).toBe(409);
    expect(((await skip.json()) as { error: { code: string } }).error.code).toBe(
      "illegal_transition",
    );
    // The order's own parties, on a step that is not theirs: they know the order, so 403.
    expect(
      (await step(orderId, "PICKED_UP", 2, { sub: "rest-1", role: "restaurant" })).status,
    ).toBe(403);
    expect((await step(orderId, "READY", 2, { sub: riderId, role: "rider" })).status).toBe(403);
    expect(
      (await step(orderId, "CANCELLED", 2, { sub: customerId, role: "customer" })).status,
    ).toBe(403);
    expect((await step(orderId, "ASSIGNED", 2, { sub: "o1", role: "ops" })).status).toBe(409);
    const status = await fixture.gateway.call(`/v1/orders/${orderId}/status`, {
      as: { sub: "o1", role: "ops" },
    });
    expect(await status.json()).toMatchObject({ orderId, status: "ASSIGNED", version: 2, riderId });
    // Concurrent steps with the same version: exactly one wins.
    const racers = await Promise.all(
      Array.from({ length: 20 }, () =>
        step(orderId, "CANCELLED", 2, { sub: "d1", role: "dispatcher" }),
      ),
    );
    expect(racers.filter((r) => r.status === 200)).toHaveLength(1);
    expect(racers.filter((r) => r.status === 409)).toHaveLength(19);
  });
});

describe("GET /v1/orders/:id/track", () => {
  test("names the same owner the tracking fixture.nodes compute", async () => {
    for (let i = 0; i < 10; i++) {
      const { orderId, customerId } = await newOrder();
      const response = await fixture.gateway.call(`/v1/orders/${orderId}/track`, {
        as: { sub: customerId, role: "customer" },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { node: string; url: string };
      const owner = fixture.nodes.find((node) => node.app.ring.ownerOf(orderId)?.id === node.id);
      expect(body).toEqual({
        orderId,
        node: owner?.id,
        url: `${owner?.url}/v1/orders/${orderId}/track`,
      } as never);
    }
  });

  test("with no tracking node alive: 503 unavailable with Retry-After, as the balancer answers its socket", async () => {
    const redis = await startRedis();
    const db = new Redis(redis.url);
    const lonely = await startTestGateway({ REDIS_URL: redis.url });
    try {
      const orderId = uniqueId("order");
      const customerId = uniqueId("cust");
      await seedOrder(db, { orderId, customerId, riderId: uniqueId("rider") });
      const response = await lonely.call(`/v1/orders/${orderId}/track`, {
        as: { sub: customerId, role: "customer" },
      });
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        "unavailable",
      );
      expect(response.headers.get("retry-after")).toBe("1");
    } finally {
      await lonely.stop();
      db.disconnect();
      await redis.stop();
    }
  });
});

describe("middleware", () => {
  test("rate limit: RateLimit-* headers, then 429 with Retry-After, per identity", async () => {
    const limited = await startTestGateway({
      REDIS_URL: fixture.redis.url,
      RATE_LIMIT_REQUESTS: "3",
      RATE_LIMIT_WINDOW_MS: "60000",
    });
    try {
      const { orderId, customerId } = await newOrder();
      const as = { sub: customerId, role: "customer" } as const;
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await limited.call(`/v1/orders/${orderId}/status`, { as });
        statuses.push(last.status);
        if (i === 0) {
          expect(last.headers.get("ratelimit-limit")).toBe("3");
          expect(last.headers.get("ratelimit-remaining")).toBe("2");
        }
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(Number(last?.headers.get("retry-after"))).toBeGreaterThan(0);
      const limitedBody = (await last?.json()) as { error: { code: string } } | undefined;
      expect(limitedBody?.error.code).toBe("rate_limited");
      // Another identity has its own budget.
      expect(
        (
          await limited.call(`/v1/orders/${orderId}/status`, {
            as: { sub: uniqueId("dispatcher"), role: "dispatcher" },
          })
        ).status,
      ).toBe(200);
    } finally {
      await limited.stop();
    }
  });

  test("a body over the limit is 413; CORS preflight answers; unknown routes 404 in the error shape", async () => {
    const big = await fixture.gateway.call("/v1/orders/x/status", {
      method: "POST",
      body: "x".repeat(4096),
      as: { sub: "o1", role: "ops" },
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe(
      "payload_too_large",
    );
    const preflight = await fetch(`${fixture.gateway.url}/v1/orders/x/status`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "GET" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    // A browser app on another origin can read when to retry and which request it was.
    const crossOrigin = await fixture.gateway.call("/v1/orders/x/status", {
      headers: { origin: "https://app.example" },
      as: { sub: "o1", role: "ops" },
    });
    const exposed = (crossOrigin.headers.get("access-control-expose-headers") ?? "").split(/, */);
    expect(exposed).toEqual(
      expect.arrayContaining(["Retry-After", "RateLimit-Remaining", "X-Request-Id"]),
    );
    const missing = await fixture.gateway.call("/nope", { as: { sub: "o1", role: "ops" } });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  test("every answer keeps its X-Request-Id and says Vary: Origin; only a browser's (with Origin) gets CORS headers", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics", "/", "/live-map.js", "/docs", "/nope"]) {
      const plain = await fetch(`${fixture.gateway.url}${path}`);
      expect([path, plain.headers.get("x-request-id")]).toEqual([path, expect.any(String)]);
      expect(plain.headers.get("vary")).toContain("Origin");
      expect(plain.headers.get("access-control-allow-origin")).toBeNull();
      const browser = await fetch(`${fixture.gateway.url}${path}`, {
        headers: { origin: "https://app.example" },
      });
      expect([path, browser.headers.get("access-control-allow-origin")]).toEqual([path, "*"]);
      expect(browser.headers.get("access-control-expose-headers")).toContain("X-Request-Id");
      expect(browser.headers.get("x-request-id")).toBeString();
      await Promise.all([plain.arrayBuffer(), browser.arrayBuffer()]);
    }
  });

  test("Redis down: 503 quickly, and readiness says why", async () => {
    const ownRedis = await startRedis();
    const own = await startTestGateway({ REDIS_URL: ownRedis.url });
    try {
      await ownRedis.kill();
      const started = performance.now();
      const response = await own.call("/v1/orders/o1/status", { as: { sub: "o1", role: "ops" } });
      expect(response.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        "unavailable",
      );
      expect((await fetch(`${own.url}/readyz`)).status).toBe(503);
    } finally {
      await own.stop();
      await ownRedis.stop();
    }
  });
});
