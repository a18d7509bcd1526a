import { Cluster } from "ioredis";
import { keys } from "../../core/redis/keys";
import { startTestGateway, type TestGateway } from "./gateway";
import { startTestIngest, type TestIngest } from "./ingest";
import { seedOrder } from "./orders";
import { type RedisCluster, startRedisCluster } from "./redis-server";
import { startSteadyRider } from "./steady-rider";
import { testToken, uniqueId } from "./tokens";
import { openWatcher, startTestTracking, type TestTrackingNode } from "./tracking";
import { startTestUpstream, type TestUpstream } from "./upstream";
import { waitUntil } from "./wait";

/** A 3-master, 3-replica cluster (1 s node timeout) with an ingest, two tracking nodes and a gateway on it. */
export interface FailoverRig {
  readonly cluster: RedisCluster;
  /** A plain cluster client for seeding and reading. */
  readonly db: Cluster;
  readonly gateway: TestGateway;
  readonly ingest: TestIngest;
  stop(): Promise<void>;
}

const RING_TTL = { TRACKING_NODE_TTL_MS: "5000" };

export async function startFailoverRig(): Promise<FailoverRig> {
  const cluster = await startRedisCluster(3, { replicas: 1, nodeTimeoutMs: 1_000 });
  const db = new Cluster(cluster.nodes);
  const upstream: TestUpstream = startTestUpstream();
  const env = { REDIS_CLUSTER_NODES: cluster.nodesEnv };
  const ingest = await startTestIngest(env);
  const nodes: TestTrackingNode[] = [
    await startTestTracking({ ...env, ...RING_TTL }),
    await startTestTracking({ ...env, ...RING_TTL }),
  ];
  const gateway = await startTestGateway({
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
  return {
    cluster,
    db,
    gateway,
    ingest,
    async stop() {
      await gateway.stop();
      for (const node of nodes) await node.stop();
      await ingest.stop();
      await upstream.stop();
      db.disconnect();
      await cluster.stop();
    },
  };
}

/** An order id whose keys live on the master at `port` (or, with `not`, elsewhere). */
export async function orderOn(rig: FailoverRig, port: number, not = false): Promise<string> {
  for (;;) {
    const orderId = uniqueId("order");
    if (((await rig.cluster.masterOf(keys.order(orderId))) === port) !== not) return orderId;
  }
}

/** POST /v1/orders/{id}/status as the order's restaurant ("rest-1") or rider. */
export const stepOrder = (
  rig: FailoverRig,
  orderId: string,
  to: string,
  expectedVersion: number,
  as: { sub: string; role: "rider" | "restaurant" },
) =>
  rig.gateway.call(`/v1/orders/${orderId}/status`, {
    method: "POST",
    body: JSON.stringify({ to, expectedVersion }),
    as,
  });

/** Reads one route every 50 ms until stopped, keeping each answer's status and time. */
function startProbe(rig: FailoverRig, path: string) {
  const answers: { at: number; status: number }[] = [];
  let stopped = false;
  const run = (async () => {
    while (!stopped) {
      const response = await rig.gateway
        .call(path, { as: { sub: "ops-1", role: "ops" } })
        .catch(() => undefined);
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

const count = (statuses: Map<number, number>, status: number) =>
  statuses.set(status, (statuses.get(status) ?? 0) + 1);

/**
 * Takes orders through READY → PICKED_UP → DELIVERED through the gateway, as
 * their restaurant and rider would, until stopped: a 200 is an acknowledged
 * change; after a 503 the client reads the order before going on (the change
 * may have run).
 */
function startStepping(rig: FailoverRig, orders: { orderId: string; riderId: string }[]) {
  const acked: { orderId: string; version: number; sentAt: number }[] = [];
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
        const sentAt = Date.now();
        const response = await stepOrder(rig, orderId, to, version, as).catch(() => undefined);
        count(statuses, response?.status ?? 0);
        if (response?.status === 200) {
          version = ((await response.json()) as { version: number }).version;
          acked.push({ orderId, version, sentAt });
        } else {
          await Bun.sleep(100);
          const read = await rig.gateway.call(`/v1/orders/${orderId}/status`, { as });
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
function startOrdering(rig: FailoverRig) {
  const acked: { customerId: string; orderId: string }[] = [];
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
        const response = await rig.gateway
          .call("/v1/orders", {
            method: "POST",
            body,
            headers: { "idempotency-key": key, "content-type": "application/json" },
            as: { sub: customerId, role: "customer" },
          })
          .catch(() => undefined);
        count(statuses, response?.status ?? 0);
        if (response?.status === 201) {
          const { id } = (await response.json()) as { id: string };
          acked.push({ customerId, orderId: id });
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

export interface FailoverOutcome {
  /** Kill → the replica serves the slots (ms). */
  readonly promotedMs: number;
  /** How long reads of an order on the dead master's slots answered non-200. */
  readonly shardReadOutageMs: number;
  /** Kill → the first ping accepted again (sent after the kill). */
  readonly pingsBackMs: number;
  /** Kill → the first position a customer got again. */
  readonly mapBackMs: number;
  /** Kill → the first change on the dead master's slots asked for and acknowledged again. */
  readonly writesBackMs: number;
  /** Kill → every node agrees again, the restarted one a synced replica (waitUntilOk). */
  readonly wholeAgainMs: number;
  readonly droppedPings: number;
  readonly riderStreamOpen: boolean;
  readonly statusAnswers: ReadonlyMap<number, number>;
  readonly createAnswers: ReadonlyMap<number, number>;
  readonly acked: number;
  /** Acknowledged changes not found after the failover. */
  readonly lost: number;
  /** Reads of an order on another master, all 200 throughout. */
  readonly othersUntouched: boolean;
}

/**
 * Under load (a rider streaming, a customer watching, orders stepping
 * through their statuses on every shard, customers ordering), kill -9 the
 * master of the rider's city and the watched order; once its replica is
 * promoted, restart the dead process (it rejoins as the replica), wait until
 * every order is delivered, then check every acknowledged change.
 */
export async function killMasterUnderLoad(
  rig: FailoverRig,
  options: { orders?: number } = {},
): Promise<FailoverOutcome> {
  const { cluster, db, gateway, ingest } = rig;
  await cluster.waitUntilOk();
  const victim = await cluster.masterOf(keys.cityRiders("london"));
  const riderId = uniqueId("rider");
  const customerId = uniqueId("cust");
  const watchedId = await orderOn(rig, victim);
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
  const positionTimes = () =>
    watcher.frames
      .filter((frame) => (frame as { type: string }).type === "position")
      .map((frame) => (frame as { receivedAt: number }).receivedAt);
  await waitUntil(() => positionTimes().length > 0, 10_000, "the courier on the map");

  // Orders on every shard, a third of them on the victim's.
  const orders = await Promise.all(
    Array.from({ length: options.orders ?? 24 }, async (_, i) => {
      const affected = i % 3 === 0;
      const orderId = await orderOn(rig, victim, !affected);
      const courier = uniqueId("rider");
      await seedOrder(db, { orderId, customerId: uniqueId("cust"), riderId: courier });
      return { orderId, riderId: courier, affected };
    }),
  );
  const [affected, other] = [orders.find((o) => o.affected), orders.find((o) => !o.affected)];
  if (!affected || !other) throw new Error("failover scenario: too few orders");
  const [affectedReads, otherReads] = [affected, other].map((order) =>
    startProbe(rig, `/v1/orders/${order.orderId}/status`),
  );
  const stepping = startStepping(rig, orders);
  const ordering = startOrdering(rig);
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
  await waitUntil(
    () => positionTimes().some((at) => at >= killedAt),
    15_000,
    "the courier on the map again",
  );
  await waitUntil(
    async () =>
      (await Promise.all(orders.map((o) => db.hget(keys.order(o.orderId), "version")))).every(
        (version) => version === "5",
      ),
    30_000,
    "every order delivered",
  );
  await stepping.stop();
  await ordering.stop();
  await affectedReads?.stop();
  await otherReads?.stop();
  const riderStreamOpen = rider.open();
  const droppedPings = rider.dropped.get("UNAVAILABLE") ?? 0;
  const pingsBackMs = (rider.firstAcceptedSentAfter(killedAt) ?? Number.NaN) - killedAt;
  await rider.stop();
  watcher.close();

  let lost = 0;
  for (const { orderId, version } of stepping.acked)
    if (Number(await db.hget(keys.order(orderId), "version")) < version) lost += 1;
  for (const { customerId: customer, orderId } of ordering.acked) {
    const read = await gateway.call(`/v1/orders/${orderId}/status`, {
      as: { sub: customer, role: "customer" },
    });
    if (read.status !== 200) lost += 1;
  }
  // Asked after the kill (one in flight at the kill may still have been confirmed).
  const affectedAcks = stepping.acked.filter(
    (a) => a.sentAt > killedAt && orders.some((o) => o.affected && o.orderId === a.orderId),
  );
  return {
    promotedMs: promotedAt - killedAt,
    shardReadOutageMs: affectedReads?.outageMs(killedAt) ?? 0,
    pingsBackMs,
    mapBackMs: Math.min(...positionTimes().filter((at) => at >= killedAt)) - killedAt,
    writesBackMs: Math.min(...affectedAcks.map((a) => a.sentAt)) - killedAt,
    wholeAgainMs: replicatedAt - killedAt,
    droppedPings,
    riderStreamOpen,
    statusAnswers: stepping.statuses,
    createAnswers: ordering.statuses,
    acked: stepping.acked.length + ordering.acked.length,
    lost,
    othersUntouched: otherReads?.answers.every((a) => a.status === 200) ?? false,
  };
}

/** One line with the figures. */
export function describeFailover(outcome: FailoverOutcome): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const counts = (statuses: ReadonlyMap<number, number>) =>
    [...statuses].map(([status, n]) => `${status}×${n}`).join(" ");
  return (
    `kill → replica promoted ${s(outcome.promotedMs)}; reads of the shard non-200 for ${s(outcome.shardReadOutageMs)}, ` +
    `pings accepted again after ${s(outcome.pingsBackMs)}, courier on the map again after ${s(outcome.mapBackMs)}, ` +
    `its order changes acknowledged again after ${s(outcome.writesBackMs)} (the cluster whole again, the killed node a synced replica, by ${s(outcome.wholeAgainMs)}); ` +
    `${outcome.droppedPings} pings reported dropped; status answers ${counts(outcome.statusAnswers)}, creates ${counts(outcome.createAnswers)}; ` +
    `${outcome.acked} acknowledged order changes, ${outcome.lost} lost`
  );
}
