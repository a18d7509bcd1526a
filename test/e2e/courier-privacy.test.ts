import { beforeAll, describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import type { Role } from "../../core/auth/identity";
import { encodeRiderInboxMessage } from "../../core/messages/rider-inbox";
import { statusEventJson } from "../../core/messages/tracking-events";
import { keys } from "../../core/redis/keys";
import { GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { useIngestOnRedis } from "../support/ingest";
import { seedOrder } from "../support/orders";
import { openPingStream, type PingStream } from "../support/ping-stream";
import { positionEvent } from "../support/positions";
import { testToken, uniqueId } from "../support/tokens";
import {
  openWatcher,
  refusalStatus,
  startTestTracking,
  type TestTrackingNode,
  type TestWatcher,
} from "../support/tracking";
import { waitUntil } from "../support/wait";

// Who sees a courier, and for how long, across whole orders: real pings
// through the ingest, real status steps through the gateway, real watchers.
// Long enough for the checks on the ended order, even on a busy machine; the
// expiry itself is awaited.
const ENDED_TTL_MS = 3_000;
const fixture = useIngestOnRedis(
  {},
  {
    stopFirst: async () => {
      await gateway?.stop();
      await node?.stop();
    },
  },
);
let gateway: TestGateway;
let node: TestTrackingNode;

beforeAll(async () => {
  node = await startTestTracking({ REDIS_URL: fixture.redis.url });
  gateway = await startTestGateway({
    REDIS_URL: fixture.redis.url,
    ORDER_ENDED_TTL_MS: String(ENDED_TTL_MS),
    RATE_LIMIT_REQUESTS: "10000",
  });
});

type Frame = { type: string; status?: string; seq?: number; riderId?: string };

/** A rider app: one StreamPings stream, pings one second apart (in recorded time), offers kept. */
async function riderApp(riderId: string) {
  const stream: PingStream = openPingStream(
    fixture.ingest.grpc,
    await testToken(riderId, "rider", "london"),
  );
  let seq = 0n;
  let recordedAt = Date.now() - 100_000;
  const offers: string[] = [];
  let acked = 0n;
  // The app's reader: acks and offers come down the one stream in any order.
  (async () => {
    for (;;) {
      const response = await stream.next(60_000).catch(() => undefined);
      if (!response) return;
      if (response.event.case === "ack") acked = response.event.value.lastAcceptedSeq;
      if (response.event.case === "offer") offers.push(response.event.value.fencingToken);
    }
  })();
  async function ping(): Promise<number> {
    seq += 1n;
    recordedAt += 1_000;
    stream.send(
      create(GeoPingSchema, {
        lat: 51.5 + Number(seq) * 0.00005,
        lng: -0.12,
        accuracyM: 5,
        speedMps: 5,
        headingDeg: 0,
        recordedAtMs: BigInt(recordedAt),
        seq,
      }),
    );
    const sent = seq;
    await waitUntil(() => acked >= sent, 5_000, `the ack of ping ${sent}`);
    return Number(sent);
  }
  await ping();
  await waitUntil(
    async () =>
      Number(
        ((await fixture.db.pubsub("NUMSUB", keys.riderInbox(riderId))) as [string, number])[1],
      ) === 1,
    5_000,
    "the rider's inbox subscription",
  );
  return {
    riderId,
    ping,
    /**
     * Pings until `watcher` has that ping's position. The ingest learns of a
     * new order through the rider's inbox, and a ping sent right after the
     * accept may overtake that message; the app's next ping then carries it.
     */
    async pingSeenBy(watcher: TestWatcher): Promise<number> {
      for (let attempt = 1; ; attempt++) {
        const seq = await ping();
        try {
          await positionArrives(watcher, riderId, seq, 500);
          return seq;
        } catch (error) {
          if (attempt === 10) throw error;
        }
      }
    },
    /** Dispatcher offers the order, the app gets the offer on its stream and accepts it at the gateway. */
    async take(orderId: string): Promise<void> {
      const offered = await gateway.call("/v1/dispatch/offers", {
        method: "POST",
        body: JSON.stringify({ orderId, riderId, city: "london", ttlMs: 30_000 }),
        as: { sub: "dispatcher-1", role: "dispatcher" },
      });
      expect(offered.status).toBe(201);
      const { fencingToken } = (await offered.json()) as { fencingToken: string };
      await waitUntil(() => offers.includes(fencingToken), 5_000, "the offer on the stream");
      const accepted = await gateway.call(`/v1/rides/${orderId}`, {
        method: "PATCH",
        body: JSON.stringify({ action: "accept", token: fencingToken }),
        as: { sub: riderId, role: "rider" },
      });
      expect(accepted.status).toBe(200);
    },
    finish: () => stream.finish(),
  };
}

async function step(orderId: string, to: string, as: { sub: string; role: Role }) {
  const current = (await (
    await gateway.call(`/v1/orders/${orderId}/status`, { as: { sub: "ops-1", role: "ops" } })
  ).json()) as { version: number };
  const response = await gateway.call(`/v1/orders/${orderId}/status`, {
    method: "POST",
    body: JSON.stringify({ to, expectedVersion: current.version }),
    as,
  });
  expect(response.status).toBe(200);
}

async function watch(orderId: string, sub: string, role: Role): Promise<TestWatcher> {
  const token = await testToken(sub, role, role === "rider" ? "london" : undefined);
  return openWatcher(`${node.url}/v1/orders/${orderId}/track?access_token=${token}`);
}

async function withheldPositions(): Promise<number> {
  const text = await node.app.registry.getSingleMetricAsString(
    "edge_tracking_rider_frames_withheld_total",
  );
  return Number(/type="position"[^\n]* (\d+)/.exec(text)?.[1] ?? 0);
}

const framesOf = (watcher: TestWatcher) => watcher.frames as Frame[];

/** Waits for the watcher to get the position `seq` of `riderId`. */
async function positionArrives(
  watcher: TestWatcher,
  riderId: string,
  seq: number,
  timeoutMs = 5_000,
): Promise<void> {
  await waitUntil(
    () =>
      framesOf(watcher).some(
        (frame) => frame.type === "position" && frame.riderId === riderId && frame.seq === seq,
      ),
    timeoutMs,
    `position ${seq} of ${riderId}`,
  );
}

/** A reconnect to an ended order: the final status, then close 4410, and nothing else. */
async function expectEndedOnConnect(orderId: string, sub: string, role: Role, status: string) {
  const late = await watch(orderId, sub, role);
  expect(await late.closed).toEqual({ code: 4410, reason: "order ended" });
  expect(framesOf(late)).toEqual([expect.objectContaining({ type: "status", status })]);
}

describe("who sees the courier", () => {
  test("delivered: seen from ASSIGNED until DELIVERED, by every role, never after; the rider moves on unseen; the record expires", async () => {
    const orderA = uniqueId("order");
    const customerA = uniqueId("cust");
    await seedOrder(fixture.db, { orderId: orderA, customerId: customerA });
    const rider = await riderApp(uniqueId("rider"));

    // CONFIRMED: the rider is nobody's courier yet, even if something publishes its position.
    const customer = await watch(orderA, customerA, "customer");
    await customer.waitForFrames(1);
    await fixture.db.publish(keys.orderTrack(orderA), positionEvent(orderA, rider.riderId, 999));
    await rider.take(orderA);
    // Assigned: the rider's last position comes at once, not with the next ping.
    await positionArrives(customer, rider.riderId, 1);
    const moving = await rider.pingSeenBy(customer);
    // Then its pings in order (an earlier try's frame may land too on a busy
    // machine), and never the seq-999 frame published before the assignment.
    const seen = framesOf(customer).map((frame) => frame.status ?? frame.seq);
    expect(seen.slice(0, 3)).toEqual(["CONFIRMED", "ASSIGNED", 1]);
    expect(seen.at(-1)).toBe(moving);
    expect(seen.slice(3)).toEqual(
      [...new Set(seen.slice(3) as number[])].filter((seq) => seq <= moving).sort((x, y) => x - y),
    );

    // The rider, dispatchers and ops see the same while the order runs.
    const others = [
      await watch(orderA, rider.riderId, "rider"),
      await watch(orderA, "dispatcher-1", "dispatcher"),
      await watch(orderA, "ops-1", "ops"),
    ];
    for (const watcher of others) await positionArrives(watcher, rider.riderId, moving);
    await step(orderA, "READY", { sub: "rest-1", role: "restaurant" });
    await step(orderA, "PICKED_UP", { sub: rider.riderId, role: "rider" });
    const carrying = await rider.ping();
    for (const watcher of [customer, ...others])
      await positionArrives(watcher, rider.riderId, carrying);
    await step(orderA, "DELIVERED", { sub: rider.riderId, role: "rider" });

    // Everyone gets the final status, then 4410, and nothing after it.
    for (const watcher of [customer, ...others]) {
      expect(await watcher.closed).toEqual({ code: 4410, reason: "order ended" });
      expect(framesOf(watcher).at(-1)).toMatchObject({ type: "status", status: "DELIVERED" });
    }
    expect(await fixture.db.sismember(keys.riderOrders(rider.riderId), orderA)).toBe(0);
    const ttl = await fixture.db.pttl(keys.order(orderA));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(ENDED_TTL_MS);
    for (const [sub, role] of [
      [rider.riderId, "rider"],
      ["dispatcher-1", "dispatcher"],
      ["ops-1", "ops"],
    ] as const)
      await expectEndedOnConnect(orderA, sub, role, "DELIVERED");

    // The rider moves on to order B: its customer sees the rider, A's customer never does.
    const orderB = uniqueId("order");
    const customerB = uniqueId("cust");
    await seedOrder(fixture.db, { orderId: orderB, customerId: customerB });
    await rider.take(orderB);
    const watcherB = await watch(orderB, customerB, "customer");
    await rider.pingSeenBy(watcherB);
    await expectEndedOnConnect(orderA, customerA, "customer", "DELIVERED");
    const status = await gateway.call(`/v1/orders/${orderA}/status`, {
      as: { sub: customerA, role: "customer" },
    });
    // The places the order goes between, never the courier's position.
    expect(await status.json()).toEqual({
      orderId: orderA,
      status: "DELIVERED",
      version: 5,
      riderId: rider.riderId,
      pickup: { lat: 51.5, lng: -0.12 },
      dropoff: { lat: 51.52, lng: -0.1 },
    });
    expect(await fixture.db.pttl(keys.order(orderB))).toBe(-1);

    // After the retention the record is gone: 404 everywhere.
    await waitUntil(
      async () => (await fixture.db.exists(keys.order(orderA))) === 0,
      10_000,
      "expiry",
    );
    const token = await testToken(customerA, "customer");
    const gone = await refusalStatus(
      node.httpUrl,
      `/v1/orders/${orderA}/track?access_token=${token}`,
    );
    expect(gone).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(
      (
        await gateway.call(`/v1/orders/${orderA}/status`, {
          as: { sub: customerA, role: "customer" },
        })
      ).status,
    ).toBe(404);
    watcherB.close();
    await rider.finish();
  }, 30_000);

  test("cancelled: watchers get CANCELLED and 4410; the rider's active set loses the order; no position on reconnect", async () => {
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    await seedOrder(fixture.db, { orderId, customerId });
    const rider = await riderApp(uniqueId("rider"));
    await rider.take(orderId);
    const customer = await watch(orderId, customerId, "customer");
    await rider.pingSeenBy(customer);
    await step(orderId, "CANCELLED", { sub: "dispatcher-1", role: "dispatcher" });
    expect(await customer.closed).toEqual({ code: 4410, reason: "order ended" });
    expect(framesOf(customer).at(-1)).toMatchObject({ type: "status", status: "CANCELLED" });
    expect(await fixture.db.sismember(keys.riderOrders(rider.riderId), orderId)).toBe(0);
    expect(await fixture.db.pttl(keys.order(orderId))).toBeGreaterThan(0);
    await rider.ping();
    await expectEndedOnConnect(orderId, customerId, "customer", "CANCELLED");
    await rider.finish();
  }, 15_000);

  test("rider replaced: the old rider's positions are withheld, the old rider's own socket is closed 4403", async () => {
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    await seedOrder(fixture.db, { orderId, customerId });
    const first = await riderApp(uniqueId("rider"));
    const second = await riderApp(uniqueId("rider"));
    await first.take(orderId);
    const customer = await watch(orderId, customerId, "customer");
    const firstRiderWatch = await watch(orderId, first.riderId, "rider");
    await first.pingSeenBy(customer);
    // No route reassigns a rider today; this is the change such a script would
    // make, with its status event (the ingest's view of the old rider's
    // active orders may lag it, so the old rider keeps publishing here).
    await fixture.db
      .multi()
      .hset(keys.order(orderId), "riderId", second.riderId)
      .hincrby(keys.order(orderId), "version", 1)
      .srem(keys.riderOrders(first.riderId), orderId)
      .sadd(keys.riderOrders(second.riderId), orderId)
      .publish(
        keys.orderTrack(orderId),
        statusEventJson(orderId, { status: "ASSIGNED", version: 3, riderId: second.riderId }),
      )
      .exec();
    expect(await firstRiderWatch.closed).toEqual({ code: 4403, reason: "not allowed" });
    await positionArrives(customer, second.riderId, 1);
    expect(framesOf(firstRiderWatch).some((frame) => frame.riderId === second.riderId)).toBe(false);
    const withheldBefore = await withheldPositions();
    const stale = await first.ping();
    await fixture.db.publish(
      keys.riderInbox(second.riderId),
      encodeRiderInboxMessage({ type: "orders-changed" }),
    );
    const fresh = await second.pingSeenBy(customer);
    // The old rider's ping did reach the node, which kept it from the customer.
    expect(await withheldPositions()).toBeGreaterThan(withheldBefore);
    expect(
      framesOf(customer).filter(
        (frame) =>
          frame.type === "position" && frame.seq === stale && frame.riderId === first.riderId,
      ),
    ).toEqual([]);
    // From the change on: the status naming the new rider, then only that rider
    // (its last position at once, then its pings in order: on a busy machine
    // the app may have pinged again before an earlier ping's frame arrived).
    const change = framesOf(customer).findIndex(
      (frame) => frame.type === "status" && frame.riderId === second.riderId,
    );
    const [status, ...positions] = framesOf(customer)
      .slice(change)
      .map((frame) => [frame.type, frame.riderId, frame.seq]);
    expect(status).toEqual(["status", second.riderId, undefined]);
    const seqs = positions.map(([, , seq]) => seq as number);
    expect(positions).toEqual(seqs.map((seq) => ["position", second.riderId, seq]));
    expect(seqs[0]).toBe(1);
    expect(seqs.at(-1)).toBe(fresh);
    expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y));
    customer.close();
    await first.finish();
    await second.finish();
  }, 15_000);

  test("a status event missed while the node's subscription was down: read again on resubscribe, so the end still closes the watcher", async () => {
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    await seedOrder(fixture.db, { orderId, customerId });
    const rider = await riderApp(uniqueId("rider"));
    await rider.take(orderId);
    const customer = await watch(orderId, customerId, "customer");
    await rider.pingSeenBy(customer);
    // Drop every subscriber connection, then end the order before they are back.
    await fixture.db.call("CLIENT", "KILL", "TYPE", "pubsub");
    await step(orderId, "CANCELLED", { sub: "dispatcher-1", role: "dispatcher" });
    expect(await customer.closed).toEqual({ code: 4410, reason: "order ended" });
    expect(framesOf(customer).at(-1)).toMatchObject({ type: "status", status: "CANCELLED" });
    await rider.finish();
  }, 15_000);
});
