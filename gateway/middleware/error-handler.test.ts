import { expect, test } from "bun:test";
import { Writable } from "node:stream";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import pino from "pino";
import { EdgeError } from "../../core/errors/edge-error";
import type { GatewayEnv } from "../context";
import { createErrorHandler } from "./error-handler";

test("EdgeErrors keep their code, Redis outages become 503, anything else a 500 that hides its cause", async () => {
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(pino({ level: "silent" })));
  app.use(requestId());
  app.get("/edge", () => {
    throw new EdgeError("rider_busy", "the rider has a pending offer");
  });
  app.get("/redis", () => {
    throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
  });
  app.get("/bug", () => {
    throw new Error("secret internals: password=hunter2");
  });
  const edge = await app.request("/edge");
  expect(edge.status).toBe(409);
  const body = (await edge.json()) as {
    error: { code: string; message: string; requestId: string };
  };
  expect(body.error).toEqual({
    code: "rider_busy",
    message: "the rider has a pending offer",
    requestId: edge.headers.get("x-request-id") ?? "",
  });
  expect((await app.request("/redis")).status).toBe(503);
  const bug = await app.request("/bug");
  expect(bug.status).toBe(500);
  expect(await bug.text()).not.toContain("hunter2");
});

test("every 5xx is logged with its cause; a 503 carries the error's Retry-After", async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(pino(sink)));
  app.use(requestId());
  app.get("/upstream", () => {
    throw new EdgeError("upstream_failed", "the search service failed (500)", {
      cause: new Error("upstream said: database on fire"),
    });
  });
  app.get("/open", () => {
    throw new EdgeError("upstream_unavailable", "failing", { retryAfterSeconds: 4 });
  });
  app.get("/mine", () => {
    throw new EdgeError("bad_request", "nope");
  });
  expect((await app.request("/upstream")).status).toBe(502);
  const open = await app.request("/open");
  expect([open.status, open.headers.get("retry-after")]).toEqual([503, "4"]);
  await app.request("/mine");
  expect(lines.map((line) => [line.level, line.code, line.msg])).toEqual([
    [40, "upstream_failed", "the search service failed (500)"],
    [40, "upstream_unavailable", "failing"],
  ]);
  expect(JSON.stringify(lines[0])).toContain("database on fire");
});

test("a 503 with an exception under it (a store failing) is logged at error; one the edge chose without one (retry) at warn", async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const app = new Hono<GatewayEnv>();
  app.onError(createErrorHandler(pino(sink)));
  app.use(requestId());
  app.get("/redis-down", () => {
    throw new Error("Connection is closed.");
  });
  app.get("/store-failed", () => {
    throw new EdgeError("unavailable", "the order store failed", {
      cause: new Error("CLUSTERDOWN The cluster is down"),
    });
  });
  app.get("/retry", () => {
    throw new EdgeError("unavailable", "this offer's first accept is still under way: retry");
  });
  app.get("/bug", () => {
    throw new TypeError("undefined is not a function");
  });
  for (const path of ["/redis-down", "/store-failed", "/retry", "/bug"]) {
    const answer = await app.request(path);
    expect(answer.status).toBe(path === "/bug" ? 500 : 503);
  }
  expect(lines.map((line) => [line.level, line.code])).toEqual([
    [50, "unavailable"],
    [50, "unavailable"],
    [40, "unavailable"],
    [50, "internal"],
  ]);
  // The designed answer's line still names what the client was told.
  expect(lines[2]?.msg).toBe("this offer's first accept is still under way: retry");
});
