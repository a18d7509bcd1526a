import { expect, test } from "bun:test";
import { Writable } from "node:stream";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import pino from "pino";
import type { GatewayEnv } from "../context";
import { accessLog } from "./access-log";

test("one JSON line per request with its request id, status and time; handlers get the child logger", async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const app = new Hono<GatewayEnv>();
  app.use(requestId());
  app.use(accessLog(pino(sink)));
  app.get("/x", (c) => {
    c.get("logger").info("inside");
    return c.text("ok", 201);
  });
  const response = await app.request("/x", { headers: { authorization: "Bearer secret-token" } });
  const id = response.headers.get("x-request-id");
  expect(lines.map((l) => l.msg)).toEqual(["inside", "request"]);
  expect(lines[1]).toMatchObject({ requestId: id, method: "GET", path: "/x", status: 201 });
  expect(typeof lines[1]?.ms).toBe("number");
  expect(JSON.stringify(lines)).not.toContain("secret-token");
});
