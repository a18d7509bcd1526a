// A tracking node's SIGTERM drain while its Redis hangs (SIGSTOP) or is gone,
// with real node and redis-server processes: the drain ends by itself, exit 0.
import { expect, test } from "bun:test";
import { Redis } from "ioredis";
import { keys } from "../core/redis/keys";
import { seedOrder } from "../test/support/orders";
import { startRedis } from "../test/support/redis-server";
import { sendRequestLeftInFlight } from "../test/support/request-in-flight";
import { testToken, uniqueId } from "../test/support/tokens";
import { openWatcher, PROCESS_NODE_TTL_MS, spawnTrackingProcess } from "../test/support/tracking";
import { waitUntil } from "../test/support/wait";

/** A node on its own redis-server, beating, with its live figures written and one watcher. */
async function nodeWithWatcher(env: Record<string, string> = {}) {
  const redis = await startRedis();
  const db = new Redis(redis.url);
  db.on("error", () => undefined);
  const node = await spawnTrackingProcess({ REDIS_URL: redis.url, ...env });
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(db, { orderId, customerId, riderId: uniqueId("rider") });
  const token = await testToken(customerId, "customer");
  const watcher = await openWatcher(`${node.url}/v1/orders/${orderId}/track?access_token=${token}`);
  await watcher.waitForFrames(1);
  // The live figures are written, so the drain's stop has a report and a delete to wait on.
  await waitUntil(
    async () => (await db.hlen(keys.nodeStats())) > 0,
    5_000,
    "the node's live figures",
  );
  db.disconnect();
  return { redis, node, watcher };
}

type NodeWithWatcher = Awaited<ReturnType<typeof nodeWithWatcher>>;

/** `body` with the node's Redis frozen (SIGSTOP); the node and its Redis stopped after it. */
async function withRedisFrozen(
  env: Record<string, string>,
  body: (running: NodeWithWatcher) => Promise<void>,
): Promise<void> {
  const running = await nodeWithWatcher(env);
  const { redis, node } = running;
  process.kill(redis.pid, "SIGSTOP");
  try {
    await body(running);
  } finally {
    process.kill(redis.pid, "SIGCONT");
    await node.kill();
    await redis.stop();
  }
}

test("Redis hangs: SIGTERM still drains (watchers closed 1012) and exits 0, not 'drain timed out'", async () => {
  await withRedisFrozen({}, async ({ node, watcher }) => {
    const started = Date.now();
    node.signal("SIGTERM");
    expect(await watcher.closed).toEqual({ code: 1012, reason: "server restarting" });
    expect(await node.exited).toBe(0);
    expect(node.logs.some((line) => line.msg === "drained")).toBe(true);
    // Its last beat ages out of every ring (one TTL, two ticks of 100 ms), then each Redis
    // step of the stop gives up after its own wait; the shutdown's 15 s cut never comes.
    expect(Date.now() - started).toBeLessThan(
      Number(PROCESS_NODE_TTL_MS) + 200 + 2 * 1_000 + 3_000,
    );
  });
}, 25_000);

test("Redis hangs with a watch request under way: the drain closes it after 1 s unanswered and exits 0", async () => {
  await withRedisFrozen({}, async ({ node, watcher }) => {
    // Asked after the freeze: its order read waits on Redis, which gives no deadline.
    const token = await testToken(uniqueId("cust"), "customer");
    const request = await sendRequestLeftInFlight(Number(new URL(node.httpUrl).port), [
      `GET /v1/orders/${uniqueId("order")}/track?access_token=${token} HTTP/1.1`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ]);
    const started = Date.now();
    node.signal("SIGTERM");
    expect(await watcher.closed).toEqual({ code: 1012, reason: "server restarting" });
    // Bun's own stop waits for every request: this one held the drain until its 15 s cut (exit 1).
    expect(await node.exited).toBe(0);
    expect(await request.outcome).toBe("closed unanswered");
    expect(node.logs.some((line) => line.msg === "drain timed out")).toBe(false);
    // As above, plus the 1 s the request was given.
    expect(Date.now() - started).toBeLessThan(
      Number(PROCESS_NODE_TTL_MS) + 200 + 3 * 1_000 + 3_000,
    );
  });
}, 25_000);

test("Redis hangs under a TTL above 10 s: the drain outlasts the old fixed 15 s cut, runs to its end and exits 0", async () => {
  // The shortest TTL whose frozen-Redis drain (TTL + two ticks + 1 s for the live figures'
  // stop + 1 s for QUIT, from the last beat sent) surely runs past 15 s after the SIGTERM:
  // the drain has to outlast the old cut to show it gone, so this test takes ~17 s.
  const ttlMs = 14_000;
  await withRedisFrozen({ TRACKING_NODE_TTL_MS: String(ttlMs) }, async ({ node, watcher }) => {
    const started = Date.now();
    node.signal("SIGTERM");
    expect(await watcher.closed).toEqual({ code: 1012, reason: "server restarting" });
    expect(await node.exited).toBe(0);
    const tookMs = Date.now() - started;
    expect(node.logs.some((line) => line.msg === "drained")).toBe(true);
    expect(node.logs.some((line) => line.msg === "drain timed out")).toBe(false);
    // Its cut, derived from the TTL and the 100 ms tick: 14 s + 3 ticks + 3 s + 5 s of slack.
    expect(node.logs.find((line) => line.msg === "draining")?.timeoutMs).toBe(22_300);
    expect(tookMs).toBeGreaterThan(15_000);
  });
}, 40_000);

test("Redis gone for longer than the node TTL: the drain does not wait another TTL", async () => {
  const ttlMs = 3_000;
  const { redis, node, watcher } = await nodeWithWatcher({ TRACKING_NODE_TTL_MS: String(ttlMs) });
  await redis.kill();
  try {
    // Past one TTL since its last beat reached Redis, no ring can list the node any more.
    await Bun.sleep(ttlMs + 200);
    const started = Date.now();
    node.signal("SIGTERM");
    expect(await watcher.closed).toEqual({ code: 1012, reason: "server restarting" });
    expect(await node.exited).toBe(0);
    // It used to wait one TTL and two ticks from the SIGTERM (3.2 s here).
    expect(Date.now() - started).toBeLessThan(ttlMs);
  } finally {
    await node.kill();
    await redis.stop();
  }
}, 25_000);
