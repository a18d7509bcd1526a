import { expect, test } from "bun:test";
import { Registry } from "prom-client";
import { createGatewayMetrics } from "./metrics";

function metricsOn() {
  const registry = new Registry();
  return { registry, metrics: createGatewayMetrics(registry) };
}

const linesOf = async (registry: Registry, name: string) =>
  (await registry.metrics()).split("\n").filter((line) => line.startsWith(name));

test("requests: a count per method, route and status; durations in cumulative buckets with sum and count", async () => {
  const { registry, metrics } = metricsOn();
  const route = "/v1/orders/{id}/status";
  metrics.recordRequest("GET", route, 200, 0.0004);
  metrics.recordRequest("GET", route, 200, 0.003);
  metrics.recordRequest("GET", route, 404, 3);
  metrics.recordRequest("BREW", "unmatched", 404, 0.0001);
  expect(await linesOf(registry, "edge_gateway_requests_total")).toEqual([
    `edge_gateway_requests_total{method="GET",route="${route}",status="200"} 2`,
    `edge_gateway_requests_total{method="GET",route="${route}",status="404"} 1`,
    'edge_gateway_requests_total{method="other",route="unmatched",status="404"} 1',
  ]);
  expect(await linesOf(registry, "edge_gateway_request_duration_seconds_bucket")).toContain(
    `edge_gateway_request_duration_seconds_bucket{method="GET",route="${route}",le="0.0005"} 1`,
  );
  const get = (await linesOf(registry, "edge_gateway_request_duration_seconds")).filter((line) =>
    line.includes('method="GET"'),
  );
  expect(get.find((line) => line.includes('le="0.005"'))).toEndWith(" 2");
  expect(get.find((line) => line.includes('le="2.5"'))).toEndWith(" 2");
  expect(get.find((line) => line.includes('le="+Inf"'))).toEndWith(" 3");
  expect(get.find((line) => line.includes("_count{"))).toEndWith(" 3");
  expect(Number(get.find((line) => line.includes("_sum{"))?.split(" ")[1])).toBeCloseTo(3.0034, 6);
});

test("breaker state is one-hot per service", async () => {
  const { registry, metrics } = metricsOn();
  metrics.setBreakerState("orders", "closed");
  metrics.setBreakerState("orders", "open");
  metrics.setBreakerState("search", "half_open");
  expect(await linesOf(registry, "edge_gateway_upstream_breaker_state{")).toEqual([
    'edge_gateway_upstream_breaker_state{service="orders",state="closed"} 0',
    'edge_gateway_upstream_breaker_state{service="orders",state="open"} 1',
    'edge_gateway_upstream_breaker_state{service="orders",state="half_open"} 0',
    'edge_gateway_upstream_breaker_state{service="search",state="closed"} 0',
    'edge_gateway_upstream_breaker_state{service="search",state="open"} 0',
    'edge_gateway_upstream_breaker_state{service="search",state="half_open"} 1',
  ]);
});
