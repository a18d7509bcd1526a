import { afterAll, beforeAll, expect, test } from "bun:test";
import { Cluster } from "ioredis";
import { keys } from "../../core/redis/keys";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { startTestIngest, type TestIngest } from "../support/ingest";
import { seedOrder } from "../support/orders";
import { type RedisCluster, startRedisCluster } from "../support/redis-server";
import { startSteadyRider } from "../support/steady-rider";
import { testToken, uniqueId } from "../support/tokens";
import { openWatcher, startTestTracking, type TestTrackingNode } from "../support/tracking";
import { startTestUpstream, type TestUpstream } from "../support/upstream";
import { waitUntil } from "../support/wait";

// A Redis Cluster with a replica per master; kill -9 one master under load.
const RING_TTL = { TRACKING_NODE_TTL_MS: "5000" };
let cluster: RedisCluster;
let db: Cluster;
let upstream: TestUpstream;
let ingest: TestIngest;
let nodes: TestTrackingNode[] = [];
let gateway: TestGateway;

beforeAll(async () => {
  cluster = await startRedisCluster(3, { replicas: 1, nodeTimeoutMs: 1_000 });
  db = new Cluster(cluster.nodes);
  upstream = startTestUpstream();
  const env = { REDIS_CLUSTER_NODES: cluster.nodesEnv };
  ingest = await startTestIngest(env);
  nodes = [
    await startTestTracking({ ...env, ...RING_TTL }),
    await startTestTracking({ ...env, ...RING_TTL }),
  ];
  gateway = await startTestGateway({
    ...env,
    ...RING_TTL,
    ORDER_SERVICE_URL: upstream.url,
    SEARCH_SERVICE_URL: upstream.url,
    UPSTREAM_TIMEOUT_MS: "3000",
    RATE_LIMIT_REQUESTS: "1000000",
  });
  for (const app of [gateway.app, ...nodes.map((node) => node.app)])
    await waitUntil(async () => {
      await app.ring.refresh();
      return app.ring.nodes().length === 2;
    });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  for (const node of nodes) await node.stop();
  await ingest?.stop();
  await upstream?.stop();
  db?.disconnect();
  await cluster?.stop();
});

/** An order id whose keys live on the master at `port` (or, with `not`, elsewhere). */
async function orderOn(port: number, not = false): Promise<string> {
  for (;;) {
    const orderId = uniqueId("order");
    if (((await cluster.masterOf(keys.order(orderId))) === port) !== not) return orderId;
  }
}

const step = (
  orderId: string,
  to: string,
  expectedVersion: number,
  as: { sub: string; role: "rider" | "restaurant" },
) =>
  gateway.call(`/v1/orders/${orderId}/status`, {
    method: "POST",
    body: JSON.stringify({ to, expectedVersion }),
    as,
  });

test("a change no replica confirms is not acknowledged, and the shard is refused until its replica is back", async () => {
  const orderId = uniqueId("order");
  const riderId = uniqueId("rider");
  await seedOrder(db, { orderId, customerId: "c1", riderId });
  const master = await cluster.masterOf(keys.order(orderId));
  const [replica] = await cluster.replicasOf(master);
  if (!replica) throw new Error("no replica");
  cluster.pause(replica);
  try {
    const unconfirmed = await step(orderId, "READY", 2, { sub: "rest-1", role: "restaurant" });
    expect(unconfirmed.status).toBe(503);
    expect(unconfirmed.headers.get("retry-after")).toBe("1");
    // It ran on the master (the client must read before retrying) ...
    expect(await db.hget(keys.order(orderId), "version")).toBe("3");
    // ... and the next change on that shard is refused without running.
    const refused = await step(orderId, "PICKED_UP", 3, { sub: riderId, role: "rider" });
    expect(refused.status).toBe(503);
    expect(await db.hget(keys.order(orderId), "version")).toBe("3");
  } finally {
    cluster.resume(replica);
  }
  await waitUntil(
    async () =>
      (await step(orderId, "PICKED_UP", 3, { sub: riderId, role: "rider" })).status === 200,
    15_000,
    "a confirmed change once the replica is back",
  );
  await cluster.waitUntilOk();
}, 30_000);

interface Acked {
  readonly orderId: string;
  readonly version: number;
  readonly at: number;
}

/** Reads one route every 50 ms until stopped, keeping each answer's status and time. */
function startProbe(path: string, as: { sub: string; role: "customer" }) {
  const answers: { at: number; status: number }[] = [];
  let stopped = false;
  const run = (async () => {
    while (!stopped) {
      const response = await gateway.call(path, { as }).catch(() => undefined);
      answers.push({ at: Date.now(), status: response?.status ?? 0 });
      await Bun.sleep(50);
    }
  })();
  return {
    answers,
    /** From the first failure at or after `sinceMs` to the next 200 (0 if none failed). */
    outageMs(sinceMs: number): number {
      const from = answers.findIndex((a) => a.at >= sinceMs && a.status !== 200);
      if (from < 0) return 0;
      const back = answers.slice(from).find((a) => a.status === 200);
      return (back?.at ?? Number.POSITIVE_INFINITY) - (answers[from]?.at ?? 0);
    },
    async stop() {
      stopped = true;
      await run;
    },
  };
}

/**
 * Takes orders through READY → PICKED_UP → DELIVERED through the gateway, as
 * their restaurant and rider would, until stopped: a 200 is an acknowledged
 * change; after a 503 the client reads the order before going on (the change
 * may have run).
 */
function startStepping(orders: { orderId: string; riderId: string }[]) {
  const acked: Acked[] = [];
  const statuses = new Map<number, number>();
  let stopped = false;
  const steps = [
    ["READY", "restaurant"],
    ["PICKED_UP", "rider"],
    ["DELIVERED", "rider"],
  ] as const;
  const run = Promise.all(
    orders.map(async ({ orderId, riderId }, index) => {
      await Bun.sleep(index * 60);
      let version = 2;
      while (!stopped && version < 5) {
        const [to, role] = steps[version - 2] ?? steps[0];
        const as = role === "rider" ? { sub: riderId, role } : { sub: "rest-1", role };
        const response = await step(orderId, to, version, as).catch(() => undefined);
        const status = response?.status ?? 0;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (response && status === 200) {
          version = ((await response.json()) as { version: number }).version;
          acked.push({ orderId, version, at: Date.now() });
        } else {
          await Bun.sleep(100);
          const read = await gateway.call(`/v1/orders/${orderId}/status`, { as });
          if (read.status === 200) version = ((await read.json()) as { version: number }).version;
        }
        await Bun.sleep(150);
      }
    }),
  );
  return {
    acked,
    statuses,
    async stop() {
      stopped = true;
      await run;
    },
  };
}

/** Customers placing orders with an Idempotency-Key, retrying the same key until a 201. */
function startOrdering() {
  const acked: { customerId: string; key: string; orderId: string }[] = [];
  const statuses = new Map<number, number>();
  let stopped = false;
  const body = JSON.stringify({
    restaurantId: "ldn-curry",
    items: [{ menuItemId: "ldn-curry-m1", quantity: 1 }],
    dropoff: { lat: 51.51, lng: -0.09 },
    paymentMethod: "card",
  });
  const run = (async () => {
    while (!stopped) {
      const customerId = uniqueId("cust");
      const key = uniqueId("key");
      for (let attempt = 0; !stopped || attempt === 0; attempt++) {
        const response = await gateway
          .call("/v1/orders", {
            method: "POST",
            body,
            headers: { "idempotency-key": key, "content-type": "application/json" },
            as: { sub: customerId, role: "customer" },
          })
          .catch(() => undefined);
        const status = response?.status ?? 0;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (response && status === 201) {
          const { id } = (await response.json()) as { id: string };
          acked.push({ customerId, key, orderId: id });
          break;
        }
        await Bun.sleep(200);
      }
      await Bun.sleep(100);
    }
  })();
  return {
    acked,
    statuses,
    async stop() {
      stopped = true;
      await run;
    },
  };
}

test("kill -9 of a master under load: streams stay open, 503 then recovery, customers see the courier again, no acknowledged order change lost", async () => {
  await cluster.waitUntilOk();
  const victim = await cluster.masterOf(keys.cityRiders("london"));
  // The courier and the watched order live on the victim's slots.
  const riderId = uniqueId("rider");
  const customerId = uniqueId("cust");
  const watchedId = await orderOn(victim);
  await seedOrder(db, { orderId: watchedId, customerId, riderId });
  const rider = startSteadyRider(ingest.grpc, await testToken(riderId, "rider", "london"));
  const track = (await (
    await gateway.call(`/v1/orders/${watchedId}/track`, {
      as: { sub: customerId, role: "customer" },
    })
  ).json()) as { url: string };
  const watcher = await openWatcher(
    `${track.url}?access_token=${await testToken(customerId, "customer")}`,
  );
  const positionsSince = (sinceMs: number) =>
    watcher.frames.filter(
      (frame) =>
        (frame as { type: string }).type === "position" &&
        (frame as { receivedAt: number }).receivedAt >= sinceMs,
    ).length;
  await waitUntil(() => positionsSince(0) > 0, 10_000, "the courier on the map");

  // Orders on every shard, a third of them on the victim's.
  const orders = await Promise.all(
    Array.from({ length: 24 }, async (_, i) => {
      const orderId = i % 3 === 0 ? await orderOn(victim) : await orderOn(victim, true);
      const courier = uniqueId("rider");
      await seedOrder(db, { orderId, customerId: uniqueId("cust"), riderId: courier });
      return { orderId, riderId: courier, affected: i % 3 === 0 };
    }),
  );
  const [affected, unaffected] = [orders.find((o) => o.affected), orders.find((o) => !o.affected)];
  if (!affected || !unaffected) throw new Error("unreachable");
  const probes = [affected, unaffected].map((order) =>
    startProbe(`/v1/orders/${order.orderId}/status`, { sub: "ops-1", role: "ops" as "customer" }),
  );
  const stepping = startStepping(orders);
  const ordering = startOrdering();
  await Bun.sleep(500);

  await cluster.kill(victim);
  const killedAt = Date.now();
  await waitUntil(
    async () => (await cluster.masterOf(keys.cityRiders("london")).catch(() => victim)) !== victim,
    20_000,
    "failover",
  );
  const promotedAt = Date.now();
  // The orchestrator restarts the dead process: it rejoins, empty, as the new master's replica.
  await cluster.restart(victim);
  await cluster.waitUntilOk(20_000);
  const replicatedAt = Date.now();

  await rider.acceptedSince(killedAt, 15_000);
  await waitUntil(() => positionsSince(killedAt) > 0, 15_000, "the courier on the map again");
  // Every order gets through its steps, those on the failed-over shard too.
  await waitUntil(
    async () =>
      (await Promise.all(orders.map((o) => db.hget(keys.order(o.orderId), "version")))).every(
        (version) => version === "5",
      ),
    20_000,
    "every order delivered",
  );
  await stepping.stop();
  await ordering.stop();
  for (const probe of probes) await probe.stop();
  const ingestBackMs = (rider.firstAcceptedSentAfter(killedAt) ?? Number.NaN) - killedAt;
  const mapBackMs =
    Math.min(
      ...watcher.frames
        .filter((f) => (f as { type: string }).type === "position")
        .map((f) => (f as { receivedAt: number }).receivedAt)
        .filter((at) => at >= killedAt),
    ) - killedAt;
  const [affectedReads, unaffectedReads] = probes;
  expect(rider.open()).toBe(true);
  const droppedPings = rider.dropped.get("UNAVAILABLE") ?? 0;
  await rider.stop();
  watcher.close();

  // Every acknowledged change is still there after the failover.
  let lost = 0;
  for (const { orderId, version } of stepping.acked)
    if (Number(await db.hget(keys.order(orderId), "version")) < version) lost += 1;
  for (const { customerId: customer, orderId } of ordering.acked) {
    const read = await gateway.call(`/v1/orders/${orderId}/status`, {
      as: { sub: customer, role: "customer" },
    });
    if (read.status !== 200) lost += 1;
  }
  // Changes on the failed-over shard are acknowledged again once it has a replica.
  const affectedAcks = stepping.acked.filter(
    (a) => a.at > killedAt && orders.some((o) => o.affected && o.orderId === a.orderId),
  );
  const writesBackMs = Math.min(...affectedAcks.map((a) => a.at)) - killedAt;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const counts = (statuses: Map<number, number>) =>
    [...statuses].map(([status, n]) => `${status}×${n}`).join(" ");
  console.log(
    `failover: kill → replica promoted ${s(promotedAt - killedAt)}; reads of the shard 503 for ${s(affectedReads?.outageMs(killedAt) ?? 0)}, ` +
      `pings accepted again after ${s(ingestBackMs)}, courier on the map again after ${s(mapBackMs)}, ` +
      `its order changes acknowledged again after ${s(writesBackMs)} (the killed node restarted at ${s(promotedAt - killedAt)}, back as a replica by ${s(replicatedAt - killedAt)}); ` +
      `${droppedPings} pings reported dropped; status answers ${counts(stepping.statuses)}, creates ${counts(ordering.statuses)}; ` +
      `${stepping.acked.length + ordering.acked.length} acknowledged order changes, ${lost} lost`,
  );
  expect(lost).toBe(0);
  expect(droppedPings).toBeGreaterThan(0);
  expect(stepping.statuses.get(503) ?? 0).toBeGreaterThan(0);
  expect(stepping.statuses.has(500) || ordering.statuses.has(500)).toBe(false);
  expect(affectedAcks.length).toBeGreaterThan(0);
  expect(affectedReads?.outageMs(killedAt)).toBeGreaterThan(0);
  // Orders on the other masters never noticed.
  expect(unaffectedReads?.answers.every((a) => a.status === 200)).toBe(true);
  expect(ordering.acked.length).toBeGreaterThan(0);
}, 90_000);
