import { afterAll, beforeAll, expect, test } from "bun:test";
import pino from "pino";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { joinTrackingRegistry } from "./node-registry";
import { createTrackingRing } from "./tracking-ring";

const TICK = 1_000;
const TTL = 5_000;
let redis: RedisServer;
let connection: RedisConnection;
beforeAll(async () => {
  redis = await startRedis();
  connection = await connectRedis(
    { mode: "standalone", url: redis.url },
    "ring-test",
    pino({ level: "silent" }),
  );
});
afterAll(async () => {
  await connection?.close();
  await redis?.stop();
});

async function register(prefix: string, beats: Record<string, number>) {
  for (const [id, at] of Object.entries(beats)) {
    await connection.client.zadd(keys.trackingNodes(), at, `${prefix}${id}`);
    await connection.client.hset(keys.trackingNodeUrls(), `${prefix}${id}`, `ws://x/${id}`);
  }
}

/** A ring on a clock the test moves. */
function ringAt(start: number) {
  const clock = { now: start };
  const ring = createTrackingRing({
    connection,
    ttlMs: TTL,
    refreshMs: TICK,
    logger: pino({ level: "silent" }),
    now: () => clock.now,
  });
  ring.stop();
  return { ring, clock };
}

test("membership is the tick's: a heartbeat that ages out mid-tick counts until the next tick, for every reader", async () => {
  await connection.client.del(keys.trackingNodes(), keys.trackingNodeUrls());
  const tickStart = 1_000_000 * TICK;
  // b's last beat is exactly TTL before the tick: in this tick, out of the next.
  await register("", { a: tickStart + 100, b: tickStart - TTL });
  const early = ringAt(tickStart + 10);
  const late = ringAt(tickStart + 990);
  await early.ring.refresh();
  await late.ring.refresh();
  const ids = (r: typeof early) => r.ring.nodes().map((n) => n.id);
  // Read 980 ms apart, in the same tick: the same ring, though b's beat is
  // older than the TTL at the later read.
  expect(ids(early)).toEqual(["a", "b"]);
  expect(ids(late)).toEqual(["a", "b"]);
  expect(late.ring.isCurrent()).toBe(true);

  late.clock.now = tickStart + TICK + 5;
  expect(late.ring.isCurrent()).toBe(false);
  await late.ring.refresh();
  expect(ids(late)).toEqual(["a"]);
  expect(late.ring.isCurrent()).toBe(true);
});

test("a tick is read once: a change written mid-tick shows at the next tick everywhere", async () => {
  await connection.client.del(keys.trackingNodes(), keys.trackingNodeUrls());
  const tickStart = 2_000_000 * TICK;
  await register("", { a: tickStart, b: tickStart, c: tickStart });
  const { ring, clock } = ringAt(tickStart + 100);
  await ring.refresh();
  // A drain, mid-tick: c is marked left (listed with a long-gone beat, see node-registry.ts).
  await connection.client.zadd(keys.trackingNodes(), tickStart - 10 * TTL, "c");
  clock.now = tickStart + 600;
  expect(await ring.refresh()).toBe(false);
  expect(ring.nodes().map((n) => n.id)).toEqual(["a", "b", "c"]);
  clock.now = tickStart + TICK + 100;
  expect(await ring.refresh()).toBe(true);
  expect(ring.nodes().map((n) => n.id)).toEqual(["a", "b"]);
});

test("currentOwnerOf: a ring a tick late reads that tick first (once), a current one asks Redis nothing", async () => {
  await connection.client.del(keys.trackingNodes(), keys.trackingNodeUrls());
  const tickStart = 2_500_000 * TICK;
  await register("", { a: tickStart, b: tickStart });
  const { ring, clock } = ringAt(tickStart + 100);
  await ring.refresh();
  const orderId = "order-late-ring";
  const owner = ring.ownerOf(orderId)?.id ?? "";
  const reads = async () =>
    Number(/cmdstat_zrange:calls=(\d+)/.exec(await connection.client.info("commandstats"))?.[1]);
  const before = await reads();
  expect((await ring.currentOwnerOf(orderId))?.id).toBe(owner);
  expect(await reads()).toBe(before);
  // The owner left from the next tick on; the ring's timer has not read it yet.
  await connection.client.zadd(keys.trackingNodes(), tickStart - 10 * TTL, owner);
  clock.now = tickStart + TICK + 5;
  expect(ring.ownerOf(orderId)?.id).toBe(owner);
  const answers = await Promise.all([1, 2, 3].map(() => ring.currentOwnerOf(orderId)));
  expect(new Set(answers.map((node) => node?.id))).toEqual(new Set([owner === "a" ? "b" : "a"]));
  expect(await reads()).toBe(before + 1);
});

test("every reader computes the same owner for every order", async () => {
  await connection.client.del(keys.trackingNodes(), keys.trackingNodeUrls());
  const tickStart = 3_000_000 * TICK;
  await register("n", { 1: tickStart, 2: tickStart, 3: tickStart });
  const one = ringAt(tickStart + 1);
  const two = ringAt(tickStart + 999);
  await one.ring.refresh();
  await two.ring.refresh();
  const owners = new Set<string>();
  for (let i = 0; i < 1_000; i++) {
    const owner = one.ring.ownerOf(`order-${i}`)?.id;
    expect(two.ring.ownerOf(`order-${i}`)?.id).toBe(owner as string);
    owners.add(owner as string);
  }
  expect(owners.size).toBe(3);
});

test("the quiet moment is mid-tick, away from every ring's read", async () => {
  const { ring, clock } = ringAt(4_000_000 * TICK + 480);
  const first = ring.quietMoment().then(() => "at once");
  expect(await Promise.race([first, Bun.sleep(50).then(() => "later")])).toBe("at once");
  clock.now = 4_000_000 * TICK + 950;
  const wait = ring.quietMoment();
  // It sleeps until the middle of the next tick (550 ms here): not done yet.
  const done = await Promise.race([wait.then(() => true), Bun.sleep(100).then(() => false)]);
  expect(done).toBe(false);
});

test("a node missing from the registry (Redis lost it) stays until its last beat ages out; a node listed stale or leaving is out at the next tick", async () => {
  const { client } = connection;
  await client.del(keys.trackingNodes(), keys.trackingNodeUrls());
  const start = 2_000_000 * TICK + 100;
  const { ring, clock } = ringAt(start);
  const logger = pino({ level: "silent" });
  const registrations = await Promise.all(
    ["a", "b", "c"].map((id) =>
      joinTrackingRegistry({
        connection,
        node: { id, url: `ws://x/${id}` },
        heartbeatMs: 3_600_000,
        liveForMs: TTL,
        logger,
        now: () => clock.now,
      }),
    ),
  );
  await ring.refresh();
  const ids = () => ring.nodes().map((node) => node.id);
  expect(ids()).toEqual(["a", "b", "c"]);
  const owners = new Map(["o1", "o2", "o3", "o4"].map((o) => [o, ring.ownerOf(o)?.id]));

  // Redis loses everything: the ring does not change, and owners stay put.
  await client.flushall();
  clock.now += 3 * TICK;
  expect(await ring.refresh()).toBe(false);
  for (const [orderId, owner] of owners) expect(ring.ownerOf(orderId)?.id).toBe(owner);

  // Only a beats again; b and c are out once their last beat is older than the TTL.
  await register("", { a: clock.now });
  clock.now += 3 * TICK;
  expect(await ring.refresh()).toBe(true);
  expect(ids()).toEqual(["a"]);

  // A node that leaves is out from the tick its last beat picks, not after its TTL:
  // still in at the tick before though read after the write, out at that tick.
  await register("", { a: clock.now, b: clock.now });
  clock.now += TICK;
  await ring.refresh();
  expect(ids()).toEqual(["a", "b"]);
  const outFrom = clock.now - (clock.now % TICK) + 2 * TICK;
  await registrations[1]?.leave(outFrom - TTL - 1);
  clock.now += TICK;
  await ring.refresh();
  expect(ids()).toEqual(["a", "b"]);
  clock.now += TICK;
  await ring.refresh();
  expect(ids()).toEqual(["a"]);
  // Still listed (a ring tells a node that left from one Redis lost), with the last beat given.
  expect(Number(await client.zscore(keys.trackingNodes(), "b"))).toBe(outFrom - TTL - 1);
});

test("one id, one node: an id claimed by a live node is refused, at its URL too; of two simultaneous claims one wins; a crashed node's id is taken once its claim lapses; a drained one's at once", async () => {
  const { client } = connection;
  await client.del(keys.trackingNodes(), keys.trackingNodeUrls(), keys.trackingNodeClaim("t1"));
  const logger = pino({ level: "silent" });
  const liveForMs = 300;
  const join = (url: string, heartbeatMs = 50, id = "t1") =>
    joinTrackingRegistry({ connection, node: { id, url }, heartbeatMs, liveForMs, logger });
  const refusal = (joining: Promise<unknown>) => joining.then(() => "joined", String);

  const first = await join("ws://a/t1");
  expect(await refusal(join("ws://b/t1"))).toContain(
    "TRACKING_NODE_ID: used by a live node at ws://a/t1",
  );
  // A second process at the same URL (two containers behind one public URL) is refused too.
  expect(await refusal(join("ws://a/t1"))).toContain("TRACKING_NODE_ID: used by a live node");
  // The refused nodes wrote nothing: the live one keeps its URL.
  expect(await client.hget(keys.trackingNodeUrls(), "t1")).toBe("ws://a/t1");

  // Two starting together with a free id: exactly one joins.
  const both = await Promise.all([
    refusal(join("ws://x/t2", 50, "t2")),
    refusal(join("ws://y/t2", 50, "t2")),
  ]);
  expect(both.filter((outcome) => outcome === "joined")).toHaveLength(1);
  expect(both.find((outcome) => outcome !== "joined")).toContain("TRACKING_NODE_ID");

  // A node that crashed (it stops renewing, never leaves): the same URL takes the id after the TTL.
  await first.leave(Date.now());
  const crashed = await join("ws://a/t1", 3_600_000);
  const restarted = await join("ws://a/t1");
  expect(await client.get(keys.trackingNodeClaim("t1"))).toEndWith(" ws://a/t1");
  // Drained: its claim is given back, and a replacement elsewhere joins without waiting.
  await restarted.leave(Date.now());
  const startedAt = Date.now();
  const replacement = await join("ws://c/t1");
  expect(Date.now() - startedAt).toBeLessThan(liveForMs);
  expect(await client.hget(keys.trackingNodeUrls(), "t1")).toBe("ws://c/t1");
  await replacement.leave(Date.now());
  await crashed.leave(Date.now());
});
