// `bun bench/gateway/schema-cost.ts`: what declaring GET /v1/orders/{id}/status
// with its schema costs per request, in this process, without network, token
// or Redis: the same handler as a plain Hono route, mounted with its schema
// the way the gateway mounts it (mountRoute), and mounted by zod-openapi's
// OpenAPIHono.openapi (one async validator middleware and hook per part),
// interleaved in rounds so all see the same machine. CPU time per request,
// from process.cpuUsage; prints one JSON line.
import { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";
import { mountRoute } from "../../gateway/api/api-router";
import { orderStatusRoute } from "../../gateway/api/order-api";
import type { GatewayEnv } from "../../gateway/context";

const REQUESTS = 50_000;
const ROUNDS = 6;
const ORDER = {
  orderId: "bench-order-1",
  status: "ASSIGNED" as const,
  version: 2,
  riderId: "bench-rider-1",
  pickup: { lat: 51.5, lng: -0.12 },
  dropoff: { lat: 51.52, lng: -0.1 },
};

const apps = {
  plain: new Hono().get("/v1/orders/:id/status", (c) =>
    c.json({ ...ORDER, orderId: c.req.param("id") }, 200),
  ),
  mountRoute: mountRoute(new Hono<GatewayEnv>(), orderStatusRoute, (c) =>
    c.json({ ...ORDER, orderId: c.req.valid("param").id }, 200),
  ),
  openApiHono: new OpenAPIHono().openapi(orderStatusRoute, (c) =>
    c.json({ ...ORDER, orderId: c.req.valid("param").id }, 200),
  ),
};

async function cpuPerRequest(app: { fetch(request: Request): Response | Promise<Response> }) {
  const started = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i += 1) {
    const response = await app.fetch(
      new Request(`http://gw/v1/orders/bench-order-${i % 1000}/status`),
    );
    if (response.status !== 200) throw new Error(`answered ${response.status}`);
    await response.arrayBuffer();
  }
  const used = process.cpuUsage(started);
  return ((used.user + used.system) * 1000) / REQUESTS; // ns
}

for (const app of Object.values(apps)) await cpuPerRequest(app);
const samples: Record<string, number[]> = { plain: [], mountRoute: [], openApiHono: [] };
for (let round = 0; round < ROUNDS; round += 1)
  for (const [name, app] of Object.entries(apps)) samples[name]?.push(await cpuPerRequest(app));
const median = (values: number[] = []) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const ns = Object.fromEntries(
  Object.keys(apps).map((name) => [name, Math.round(median(samples[name]))]),
);
console.log(
  JSON.stringify({
    requestsPerRound: REQUESTS,
    rounds: ROUNDS,
    nsPerRequest: ns,
    schemaCostNs: {
      mountRoute: (ns.mountRoute ?? 0) - (ns.plain ?? 0),
      openApiHono: (ns.openApiHono ?? 0) - (ns.plain ?? 0),
    },
  }),
);
