import { expect, test } from "bun:test";
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
