import { createRoute, z } from "@hono/zod-openapi";
import { jsonResponse } from "./responses";

const NO_TOKEN = { authenticated: false } as const;

export const healthRoute = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["operations"],
  summary: "Alive",
  responses: {
    200: jsonResponse(z.object({ status: z.literal("ok") }), "The process is up", NO_TOKEN),
  },
});

export const readyRoute = createRoute({
  method: "get",
  path: "/readyz",
  tags: ["operations"],
  summary: "Ready for traffic",
  description:
    "On the gateway's own port, for the orchestrator and active health checks: the shipped balancer (docker/nginx.conf) does not route it (404).",
  responses: {
    200: jsonResponse(z.object({ status: z.literal("ready") }), "Redis is reachable", NO_TOKEN),
    503: jsonResponse(
      z.object({ status: z.literal("unavailable"), reason: z.string() }),
      "Not ready, and why",
      NO_TOKEN,
    ),
  },
});

export const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["operations"],
  summary: "Prometheus metrics",
  description:
    "On the gateway's own port, for Prometheus: the shipped balancer (docker/nginx.conf) does not route it (404).",
  responses: {
    200: {
      description: "Prometheus text exposition format",
      content: { "text/plain": { schema: z.string() } },
    },
  },
});

export const openApiRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  tags: ["operations"],
  summary: "This document",
  description:
    "Generated from the schemas that validate the requests; with this deployment's limits (the repository's docs/openapi.json has the defaults).",
  responses: {
    200: {
      description: "OpenAPI 3.1",
      content: { "application/json": { schema: z.object({}).passthrough() } },
    },
  },
});

export const apiReferenceRoute = createRoute({
  method: "get",
  path: "/docs",
  tags: ["operations"],
  summary: "The API reference page",
  description:
    "Served by the gateway with its assets (no CDN). `/docs#token=<jwt>` fills in the bearer token for trying calls.",
  responses: {
    200: { description: "HTML", content: { "text/html": { schema: z.string() } } },
  },
});
