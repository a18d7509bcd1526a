import { expect, test } from "bun:test";
import { Writable } from "node:stream";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import pino from "pino";
import { EdgeError } from "../../core/errors/edge-error";
import { createAccessLog } from "../access-log";
import type { GatewayEnv } from "../context";
import { createErrorHandler, errorResponse } from "./error-handler";
import { observeRequests, requestLogger } from "./observe-requests";

/** The root logger's lines and the access log's, into one list in the order they are written. */
function captureLines() {
  const lines: Record<string, unknown>[] = [];
  const take = (chunk: string) => {
    for (const line of chunk.split("\n")) if (line) lines.push(JSON.parse(line));
  };
  const sink = new Writable({
    write(chunk, _encoding, done) {
      take(chunk.toString());
      done();
    },
  });
  const accessLog = createAccessLog({ tier: "gateway", write: take });
  return { lines, logger: pino(sink), accessLog };
}

function observedApp(level = "info") {
  const { lines, logger, accessLog } = captureLines();
  logger.level = level;
  const recorded: { method: string; route: string; status: number; seconds: number }[] = [];
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(logger));
  app.notFound((c) => errorResponse(c, new EdgeError("not_found", "no such route")));
  app.use(requestId());
  app.use(
    observeRequests({
      logger,
      accessLog,
      recordRequest: (method, route, status, seconds) =>
        recorded.push({ method, route, status, seconds }),
    }),
  );
  app.use("/v1/*", async (c, next) => {
    if (c.req.header("x-limit")) throw new EdgeError("rate_limited", "too many requests");
    await next();
  });
  app.get("/v1/orders/:id/status", (c) => {
    requestLogger(c).info("inside");
    if (c.req.param("id") === "gone") throw new EdgeError("not_found", "no such order");
    if (c.req.param("id") === "bug") throw new Error("a bug");
    return c.text("ok", 201);
  });
  return { app, lines, recorded, accessLog };
}

test("one line per request with its request id, status and time; 4xx and 5xx lines carry the error code; no token", async () => {
  const { app, lines, accessLog } = observedApp();
  const ok = await app.request("/v1/orders/o1/status", {
    headers: { authorization: "Bearer secret-token" },
  });
  accessLog.flush();
  const id = ok.headers.get("x-request-id");
  expect(lines.map((line) => line.msg)).toEqual(["inside", "request"]);
  expect(lines[0]).toMatchObject({ requestId: id });
  expect(lines[1]).toMatchObject({ requestId: id, method: "GET", path: "/v1/orders/o1/status" });
  expect(lines[1]).toMatchObject({ status: 201 });
  expect(lines[1]).not.toHaveProperty("code");
  expect(typeof lines[1]?.ms).toBe("number");

  lines.length = 0;
  await app.request("/v1/orders/gone/status");
  await app.request("/v1/orders/o1/status", { headers: { "x-limit": "1" } });
  await app.request("/nowhere");
  await app.request("/v1/orders/bug/status");
  await app.request("/v1/orders/o1/status?access_token=secret-token");
  accessLog.flush();
  expect(
    lines.filter((line) => line.msg === "request").map((line) => [line.status, line.code]),
  ).toEqual([
    [404, "not_found"],
    [429, "rate_limited"],
    [404, "not_found"],
    [500, "internal"],
    [201, undefined],
  ]);
  // The access line is not redacted (bench/RESULTS.md): it must never carry the query or a header.
  expect(JSON.stringify(lines)).not.toContain("secret-token");
});

test("metrics get the route template (not the path), the method and status, whether the route or a middleware answered", async () => {
  const { app, recorded } = observedApp("silent");
  await app.request("/v1/orders/o1/status");
  await app.request("/v1/orders/o2/status", { headers: { "x-limit": "1" } });
  await app.request("/v1/orders/o3/status", { method: "POST" });
  await app.request("/v1/orders/../../etc");
  expect(recorded.map(({ method, route, status }) => [method, route, status])).toEqual([
    ["GET", "/v1/orders/{id}/status", 201],
    ["GET", "/v1/orders/{id}/status", 429],
    ["POST", "unmatched", 404],
    ["GET", "unmatched", 404],
  ]);
  for (const { seconds } of recorded) expect(seconds).toBeGreaterThan(0);
});
