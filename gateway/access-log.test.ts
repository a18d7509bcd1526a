import { afterAll, beforeAll, expect, test } from "bun:test";
import { startGatewayProcess } from "../test/support/gateway-process";
import { type RedisServer, startRedis } from "../test/support/redis-server";
import { createAccessLog } from "./access-log";

const fields = (requestId: string) => ({
  requestId,
  method: "GET",
  path: "/v1/orders/o1/status",
  status: 200,
  ms: 1.234,
});

test("the lines of one turn go out in one write after it, in order, in the root logger's JSON shape", async () => {
  const writes: string[] = [];
  const log = createAccessLog({ tier: "gateway", write: (chunk) => writes.push(chunk) });
  log.write(fields("a"));
  log.write({
    ...fields("b"),
    path: '/v1/orders/"x\\y\u2028é/status',
    status: 404,
    code: "not_found",
  });
  log.write(fields("c"));
  expect(writes).toEqual([]);
  await new Promise((resolve) => setImmediate(resolve));
  expect(writes.length).toBe(1);
  const lines = (writes[0] ?? "").split("\n");
  expect(lines.pop()).toBe("");
  const parsed = lines.map((line) => JSON.parse(line));
  expect(parsed.map((line) => line.requestId)).toEqual(["a", "b", "c"]);
  expect(parsed[0]).toEqual({
    level: 30,
    time: expect.any(Number),
    tier: "gateway",
    pid: process.pid,
    requestId: "a",
    method: "GET",
    path: "/v1/orders/o1/status",
    status: 200,
    ms: 1.23,
    msg: "request",
  });
  expect(parsed[1]).toMatchObject({ path: '/v1/orders/"x\\y\u2028é/status', code: "not_found" });
  log.write(fields("d"));
  log.flush();
  expect(writes.length).toBe(2);
  expect(JSON.parse(writes[1] ?? "")).toMatchObject({ requestId: "d" });
});

test("a long turn is written in 64 KiB batches as it goes, losing and reordering nothing", () => {
  const writes: string[] = [];
  const log = createAccessLog({ tier: "gateway", write: (chunk) => writes.push(chunk) });
  for (let i = 0; i < 2_000; i += 1) log.write(fields(`r${i}`));
  expect(writes.length).toBeGreaterThan(1);
  for (const chunk of writes) expect(chunk.length).toBeLessThan(64 * 1024 + 200);
  log.flush();
  const ids = writes
    .join("")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line).requestId);
  expect(ids).toEqual(Array.from({ length: 2_000 }, (_, i) => `r${i}`));
});

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  // Unset when beforeAll failed: that failure is the one to read.
  await redis?.stop();
});

test("a gateway process drained right after its last answer has written every access line, in answer order", async () => {
  const gateway = await startGatewayProcess(
    { REDIS_URL: redis.url, LOG_LEVEL: "info" },
    { stdout: "pipe" },
  );
  const get = (id: string) =>
    fetch(`${gateway.url}/healthz`, { headers: { "x-request-id": id } }).then((r) => r.text());
  // One after the other (their order is known), then 300 at once.
  for (let i = 0; i < 30; i += 1) await get(`seq-${i}`);
  await Promise.all(Array.from({ length: 300 }, (_, i) => get(`par-${i}`)));
  gateway.child.kill("SIGTERM");
  const [stdout, code] = await Promise.all([
    new Response(gateway.child.stdout as ReadableStream).text(),
    gateway.child.exited,
  ]);
  expect(code).toBe(0);
  const ids = stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((line) => line.msg === "request" && line.path === "/healthz")
    .map((line) => line.requestId as string);
  expect(ids.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => `seq-${i}`));
  expect(ids.slice(30).sort()).toEqual(Array.from({ length: 300 }, (_, i) => `par-${i}`).sort());
}, 30_000);
