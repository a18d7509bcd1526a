// Every tier's /metrics as Prometheus scrapes it: passes Debian's
// `promtool check metrics`, carries one prefix, the process metrics and,
// on the gateway, requests by route template and status with the limits,
// idempotency, upstream and breaker figures after the traffic that moves them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { bearer, pingTrack, startTestIngest, type TestIngest } from "../support/ingest";
import { seedOrder } from "../support/orders";
import { type RedisServer, startRedis } from "../support/redis-server";
import { testToken, uniqueId } from "../support/tokens";
import { refusalStatus, startTestTracking, type TestTrackingNode } from "../support/tracking";
import { startTestUpstream, type TestUpstream } from "../support/upstream";

const promtool = Bun.which("promtool");
const tiers = {} as {
  redis: RedisServer;
  upstream: TestUpstream;
  gateway: TestGateway;
  tracking: TestTrackingNode;
  ingest: TestIngest;
};

beforeAll(async () => {
  tiers.redis = await startRedis();
  tiers.upstream = startTestUpstream();
  const env = { REDIS_URL: tiers.redis.url };
  tiers.gateway = await startTestGateway({
    ...env,
    ORDER_SERVICE_URL: tiers.upstream.url,
    SEARCH_SERVICE_URL: tiers.upstream.url,
    RATE_LIMIT_REQUESTS: "3",
  });
  tiers.tracking = await startTestTracking(env);
  tiers.ingest = await startTestIngest(env);

  // Traffic that moves each kind of figure.
  const db = new Redis(tiers.redis.url);
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(db, { orderId, customerId });
  db.disconnect();
  const customer = { sub: customerId, role: "customer" } as const;
  expect((await tiers.gateway.call(`/v1/orders/${orderId}/status`, { as: customer })).status).toBe(
    200,
  );
  expect(
    (await tiers.gateway.call(`/v1/orders/${uniqueId("none")}/status`, { as: customer })).status,
  ).toBe(404);
  expect((await tiers.gateway.call("/nowhere")).status).toBe(404);
  const placer = { sub: uniqueId("cust"), role: "customer" } as const;
  const place = () =>
    tiers.gateway.call("/v1/orders", {
      method: "POST",
      headers: { "idempotency-key": "metrics-key-1" },
      body: JSON.stringify({
        restaurantId: "ldn-curry",
        items: [{ menuItemId: "ldn-curry-m1", quantity: 1 }],
        dropoff: { lat: 51.51, lng: -0.09 },
        paymentMethod: "card",
      }),
      as: placer,
    });
  expect((await place()).status).toBe(201);
  expect((await place()).headers.get("idempotent-replayed")).toBe("true");
  // The customer's fourth request in the window is over RATE_LIMIT_REQUESTS.
  for (let i = 0; i < 2; i += 1)
    expect(
      (await tiers.gateway.call(`/v1/orders/${orderId}/status`, { as: customer })).status,
    ).toBe(i === 0 ? 200 : 429);

  expect((await refusalStatus(tiers.tracking.httpUrl, `/v1/orders/${orderId}/track`)).status).toBe(
    401,
  );
  const [ping] = pingTrack(1);
  await tiers.ingest.http1.sendPing(
    { ping },
    bearer(await testToken(uniqueId("rider"), "rider", "london")),
  );
});

afterAll(async () => {
  await tiers.ingest?.stop();
  await tiers.tracking?.stop();
  await tiers.gateway?.stop();
  await tiers.upstream?.stop();
  await tiers.redis?.stop();
});

const metricsUrls = () => ({
  gateway: `${tiers.gateway.url}/metrics`,
  tracking: `${tiers.tracking.httpUrl}/metrics`,
  ingest: `${tiers.ingest.httpUrl}/metrics`,
});

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  return response.text();
}

describe.skipIf(!promtool)(
  "promtool (Debian's prometheus package; scripts/setup.sh installs it)",
  () => {
    test("promtool check metrics passes on every tier's /metrics", async () => {
      for (const [tier, url] of Object.entries(metricsUrls())) {
        const child = Bun.spawn(["promtool", "check", "metrics"], {
          stdin: new TextEncoder().encode(await scrape(url)),
          stdout: "pipe",
          stderr: "pipe",
        });
        const output =
          (await new Response(child.stdout).text()) + (await new Response(child.stderr).text());
        expect({ tier, code: await child.exited, output }).toEqual({ tier, code: 0, output: "" });
      }
    });
  },
);

test("every family carries one prefix, edge_<tier>_, edge_process_ or edge_auth_, and the process and auth metrics", async () => {
  for (const [tier, url] of Object.entries(metricsUrls())) {
    const families = [...(await scrape(url)).matchAll(/^# TYPE (\S+)/gm)].map(
      (m) => m[1] as string,
    );
    for (const name of families)
      expect({
        tier,
        name,
        ok: [`edge_${tier}_`, "edge_process_", "edge_auth_"].some((prefix) =>
          name.startsWith(prefix),
        ),
      }).toEqual({ tier, name, ok: true });
    for (const name of [
      "edge_process_cpu_seconds_total",
      "edge_process_resident_memory_bytes",
      "edge_process_js_heap_used_bytes",
      "edge_process_open_fds",
      "edge_process_event_loop_delay_seconds",
      "edge_auth_jwks_fetch_failures_total",
      "edge_auth_keys_unavailable_total",
    ])
      expect({ tier, name, present: families.includes(name) }).toEqual({
        tier,
        name,
        present: true,
      });
  }
});

test("the gateway counts requests by route template and status, limits, idempotency, upstream calls and the breaker", async () => {
  const text = await scrape(metricsUrls().gateway);
  const value = (series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  const status = (route: string, code: number) =>
    value(
      `edge_gateway_requests_total{method="GET",route="${route}",status="${code}",tier="gateway"}`,
    );
  expect(status("/v1/orders/{id}/status", 200)).toBe(2);
  expect(status("/v1/orders/{id}/status", 404)).toBe(1);
  expect(status("/v1/orders/{id}/status", 429)).toBe(1);
  expect(status("unmatched", 404)).toBe(1);
  expect(text).not.toContain("/nowhere");
  expect(
    value(
      `edge_gateway_request_duration_seconds_count{method="GET",route="/v1/orders/{id}/status",tier="gateway"}`,
    ),
  ).toBe(4);
  expect(value(`edge_gateway_rate_limited_total{limit="requests",tier="gateway"}`)).toBe(1);
  expect(value(`edge_gateway_idempotent_requests_total{outcome="claimed",tier="gateway"}`)).toBe(1);
  expect(value(`edge_gateway_idempotent_requests_total{outcome="replayed",tier="gateway"}`)).toBe(
    1,
  );
  expect(value(`edge_gateway_upstream_calls_total{service="orders",tier="gateway"}`)).toBe(1);
  expect(
    value(`edge_gateway_upstream_breaker_state{service="orders",state="closed",tier="gateway"}`),
  ).toBe(1);
  expect(
    value(`edge_gateway_upstream_breaker_state{service="orders",state="open",tier="gateway"}`),
  ).toBe(0);
});
