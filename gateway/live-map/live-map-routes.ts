import { fileURLToPath } from "node:url";
import { type Context, Hono } from "hono";
import type { RedisConnection } from "../../core/redis/client";
import type { TrackingRing } from "../../core/tracking-ring/tracking-ring";
import { mountRoute } from "../api/api-router";
import { liveViewRoute } from "../api/live-api";
import type { GatewayEnv } from "../context";
import { requireRole } from "../middleware/require-role";
import { readLiveView } from "./live-view";

const PAGE_HEADERS = {
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  // Everything comes from this origin; sockets go to the tracking nodes (ws/wss).
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'none'",
};

interface Page {
  html: string;
  css: string;
  script: string;
}

let page: Promise<Page> | undefined;

/**
 * The page's files, its script bundled once per process with Bun.build (so
 * the browser code imports core/protocol like the server does: one table of
 * subprotocols and close codes).
 */
function loadPage(): Promise<Page> {
  page ??= (async () => {
    const folder = new URL("./browser/", import.meta.url);
    const read = (name: string) => Bun.file(new URL(name, folder)).text();
    const bundle = await Bun.build({
      entrypoints: [fileURLToPath(new URL("live-map.ts", folder))],
      target: "browser",
      format: "esm",
    });
    const [output] = bundle.outputs;
    if (!bundle.success || !output) throw new AggregateError(bundle.logs, "live map bundle failed");
    return {
      html: await read("index.html"),
      css: await read("live-map.css"),
      script: await output.text(),
    };
  })();
  return page;
}

/**
 * The live map: the page at `/` (no token needed to load it; it reads one
 * from its `#token=` fragment, which never reaches a server log) and the
 * view it polls, `GET /v1/ops/live?city=` for dispatchers and ops.
 */
export async function liveMapRoutes(options: {
  connection: RedisConnection;
  ring: TrackingRing;
  freshForMs: number;
  now?: () => number;
}) {
  const { connection, ring, freshForMs, now = Date.now } = options;
  const { html, css, script } = await loadPage();
  // Through the context, so the headers set before the route (request id, CORS) stay on it.
  const asset = (body: string, type: string) => (c: Context<GatewayEnv>) =>
    c.body(body, 200, { ...PAGE_HEADERS, "content-type": type });

  const app = new Hono<GatewayEnv>()
    .get("/", asset(html, "text/html; charset=utf-8"))
    .get("/live-map.css", asset(css, "text/css; charset=utf-8"))
    .get("/live-map.js", asset(script, "text/javascript; charset=utf-8"));
  const opsOnly = { ...liveViewRoute, middleware: requireRole("dispatcher", "ops") };
  return mountRoute(app, opsOnly, async (c) => {
    const { city } = c.req.valid("query");
    return c.json(await readLiveView({ connection, ring, city, freshForMs, now: now() }), 200);
  });
}
