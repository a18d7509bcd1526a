import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../test/support/gateway";
import { startMisbehavingUpstream, type UpstreamMode } from "../test/support/misbehaving-upstream";
import { DROPOFF, PICKUP } from "../test/support/positions";
import { type RedisServer, startRedis } from "../test/support/redis-server";
import { uniqueId } from "../test/support/tokens";

let redis: RedisServer;
let upstream: Awaited<ReturnType<typeof startMisbehavingUpstream>>;
const gateways: TestGateway[] = [];
const customer = { sub: "c1", role: "customer" } as const;

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startMisbehavingUpstream();
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.stop();
  await upstream?.stop();
  await redis?.stop();
});

async function gatewayWith(env: Record<string, string>): Promise<TestGateway> {
  const gateway = await startTestGateway({
    REDIS_URL: redis.url,
    ORDER_SERVICE_URL: upstream.url,
    SEARCH_SERVICE_URL: upstream.url,
    UPSTREAM_TIMEOUT_MS: "300",
    UPSTREAM_MAX_BODY_BYTES: "65536",
    RATE_LIMIT_REQUESTS: "100000",
    ...env,
  });
  gateways.push(gateway);
  return gateway;
}

const search = (gateway: TestGateway, query: string, headers: Record<string, string> = {}) =>
  gateway.call(`/v1/restaurants?lat=${PICKUP.lat}&lng=${PICKUP.lng}&q=${query}`, {
    as: customer,
    headers,
  });

async function errorOf(response: Response) {
  const body = (await response.json()) as { error: { code: string; requestId: string } };
  expect(body.error.requestId).toBe(response.headers.get("x-request-id") ?? "missing");
  return [response.status, body.error.code];
}

const BAD_ANSWERS: [UpstreamMode, number, string][] = [
  ["status-500", 502, "upstream_failed"],
  ["not-json", 502, "upstream_failed"],
  ["truncated", 502, "upstream_failed"],
  ["wrong-shape", 502, "upstream_failed"],
  ["huge", 502, "upstream_failed"],
  ["stall-after-headers", 504, "upstream_timeout"],
];

describe("upstreams that misbehave", () => {
  test("each bad answer is 502/504 in the error shape on search, menu and orders, and nothing is cached", async () => {
    const gateway = await gatewayWith({ UPSTREAM_BREAKER_FAILURES: "1000" });
    for (const [mode, status, code] of BAD_ANSWERS) {
      upstream.state.mode = mode;
      const query = uniqueId("q");
      expect([mode, ...(await errorOf(await search(gateway, query)))]).toEqual([
        mode,
        status,
        code,
      ]);
      const menu = await gateway.call("/v1/restaurants/r1/menu", { as: customer });
      expect([mode, ...(await errorOf(menu))]).toEqual([mode, status, code]);
      const key = uniqueId("key");
      const create = () =>
        gateway.call("/v1/orders", {
          method: "POST",
          headers: { "idempotency-key": key },
          body: JSON.stringify({
            restaurantId: "r1",
            items: [{ menuItemId: "m1", quantity: 1 }],
            dropoff: DROPOFF,
            paymentMethod: "card",
          }),
          as: customer,
        });
      expect([mode, ...(await errorOf(await create()))]).toEqual([mode, status, code]);
      // Not stored: the key is free again, and the next answer is the service's again.
      expect([mode, ...(await errorOf(await create()))]).toEqual([mode, status, code]);
      upstream.state.mode = "ok";
      const fresh = await search(gateway, query);
      expect([mode, fresh.status, fresh.headers.get("x-cache")]).toEqual([mode, 200, "miss"]);
    }
  });

  test("every call is counted and timed by service, every failure by the code the client got, and the breaker's state shown", async () => {
    const gateway = await gatewayWith({
      UPSTREAM_BREAKER_FAILURES: "2",
      UPSTREAM_BREAKER_OPEN_MS: "60000",
    });
    upstream.state.mode = "status-500";
    for (let i = 0; i < 3; i++) await search(gateway, uniqueId("q"));
    upstream.state.mode = "stall-after-headers";
    await gateway.call("/v1/orders", {
      method: "POST",
      headers: { "idempotency-key": uniqueId("key") },
      body: JSON.stringify({
        restaurantId: "r1",
        items: [{ menuItemId: "m1", quantity: 1 }],
        dropoff: DROPOFF,
        paymentMethod: "card",
      }),
      as: customer,
    });
    upstream.state.mode = "ok";
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    // The value of the one series of `metric` with all of `labels` (in any order).
    const value = (metric: string, labels: string) => {
      const wanted = labels.split(",");
      const line = metrics
        .split("\n")
        .find((l) => l.startsWith(`${metric}{`) && wanted.every((label) => l.includes(label)));
      return Number(line?.split(" ").at(-1) ?? 0);
    };
    const count = (labels: string) => value("edge_gateway_upstream_errors_total", labels);
    // Two 502s open the search breaker; the third call is its 503.
    expect(count('service="search",code="upstream_failed"')).toBe(2);
    expect(count('service="search",code="upstream_unavailable"')).toBe(1);
    expect(count('service="orders",code="upstream_timeout"')).toBe(1);
    expect(value("edge_gateway_upstream_calls_total", 'service="search"')).toBe(3);
    expect(value("edge_gateway_upstream_calls_total", 'service="orders"')).toBe(1);
    expect(value("edge_gateway_upstream_call_duration_seconds_count", 'service="orders"')).toBe(1);
    expect(value("edge_gateway_upstream_breaker_opened_total", 'service="search"')).toBe(1);
    expect(value("edge_gateway_upstream_breaker_state", 'service="search",state="open"')).toBe(1);
    expect(value("edge_gateway_upstream_breaker_state", 'service="search",state="closed"')).toBe(0);
    expect(value("edge_gateway_upstream_breaker_state", 'service="orders",state="closed"')).toBe(1);
  });

  test("the request id goes upstream as X-Request-Id", async () => {
    const gateway = await gatewayWith({});
    upstream.state.mode = "ok";
    await search(gateway, uniqueId("q"), { "x-request-id": "trace-abc-123" });
    expect(upstream.requests.at(-1)?.requestId).toBe("trace-abc-123");
  });

  test("consecutive failures open the breaker: 503 upstream_unavailable with Retry-After at once, then one probe half-open", async () => {
    const gateway = await gatewayWith({
      UPSTREAM_BREAKER_FAILURES: "3",
      UPSTREAM_BREAKER_OPEN_MS: "1000",
    });
    upstream.state.mode = "status-500";
    for (let i = 0; i < 3; i++)
      expect(await errorOf(await search(gateway, uniqueId("q")))).toEqual([502, "upstream_failed"]);
    const before = upstream.requests.length;
    const started = performance.now();
    const open = await search(gateway, uniqueId("q"));
    expect(performance.now() - started).toBeLessThan(200);
    expect(Number(open.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await errorOf(open)).toEqual([503, "upstream_unavailable"]);
    // The order service has its own breaker, still closed.
    expect((await gateway.call("/v1/restaurants/r1/menu", { as: customer })).status).toBe(503);
    expect(upstream.requests.length).toBe(before);
    upstream.state.mode = "slow-ok";
    await Bun.sleep(1_050);
    // Half-open: the first call probes; one that comes while it runs is refused at once.
    const probe = search(gateway, uniqueId("q"));
    await Bun.sleep(50);
    expect(await errorOf(await search(gateway, uniqueId("q")))).toEqual([
      503,
      "upstream_unavailable",
    ]);
    expect((await probe).status).toBe(200);
    upstream.state.mode = "ok";
    expect((await search(gateway, uniqueId("q"))).status).toBe(200);
  });

  test("search serves its last good answer, marked stale, while the service fails or its breaker is open", async () => {
    const gateway = await gatewayWith({
      SEARCH_CACHE_SECONDS: "1",
      SEARCH_STALE_IF_ERROR_SECONDS: "60",
      UPSTREAM_BREAKER_FAILURES: "2",
      UPSTREAM_BREAKER_OPEN_MS: "10000",
    });
    const query = uniqueId("q");
    upstream.state.mode = "ok";
    const good = await search(gateway, query);
    const goodBody = await good.text();
    await Bun.sleep(1_100);
    for (const mode of ["status-500", "stall-after-headers", "not-json"] as const) {
      upstream.state.mode = mode;
      const stale = await search(gateway, query);
      expect([mode, stale.status, stale.headers.get("x-cache")]).toEqual([mode, 200, "stale"]);
      expect(Number(stale.headers.get("age"))).toBeGreaterThanOrEqual(1);
      expect(await stale.text()).toBe(goodBody);
    }
    // The breaker is open now: still the stale answer; a query never seen gets the 503.
    expect((await search(gateway, query)).headers.get("x-cache")).toBe("stale");
    expect(await errorOf(await search(gateway, uniqueId("q")))).toEqual([
      503,
      "upstream_unavailable",
    ]);
  });
});
