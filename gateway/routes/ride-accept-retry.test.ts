import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { keys } from "../../core/redis/keys";
import { type FreezingProxy, startFreezingProxy } from "../../test/support/freezing-proxy";
import { startTestGateway, type TestGateway } from "../../test/support/gateway";
import { seedOrder } from "../../test/support/orders";
import { useRedisClient } from "../../test/support/redis-connection";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";

// A rider's accept retried after its answer was lost (PATCH /v1/rides/{orderId}, same token):
// answered only once a replica has the assignment, and while the order is the rider's and not ended;
// told to wait (503) while the first accept is still assigning the order; an accept never leaves
// an order a cancel took away in the rider's active set.

/**
 * Gateways by how long their order writes wait for the one replica (ORDER_WRITE_REPLICAS=1);
 * `behindProxy` (patient too) reaches Redis through `proxy`, which can hold its commands back.
 */
const gateways: { short?: TestGateway; patient?: TestGateway; behindProxy?: TestGateway } = {};
let replica: RedisServer;
let replicaDb: Redis;
let proxy: FreezingProxy;

const fixture = useRedisClient({
  stopFirst: async () => {
    await Promise.all([
      gateways.short?.stop(),
      gateways.patient?.stop(),
      gateways.behindProxy?.stop(),
    ]);
    await proxy?.close();
    replicaDb?.disconnect();
    await replica?.stop();
  },
});

const PATIENT_MS = 5_000;

const withReplica = (timeoutMs: number, redisUrl = fixture.redis.url) =>
  startTestGateway({
    REDIS_URL: redisUrl,
    RATE_LIMIT_REQUESTS: "100000",
    ORDER_WRITE_REPLICAS: "1",
    ORDER_WRITE_REPLICA_TIMEOUT_MS: String(timeoutMs),
  });

beforeAll(async () => {
  replica = await startRedis();
  replicaDb = new Redis(replica.url);
  // The full sync at once, not after the default 5 s wait for more replicas.
  await fixture.db.config("SET", "repl-diskless-sync-delay", "0");
  await replicaDb.replicaof(fixture.redis.host, fixture.redis.port);
  await waitUntil(
    async () => (await replicaDb.info("replication")).includes("master_link_status:up"),
    5_000,
    "replica in sync",
  );
  proxy = await startFreezingProxy(fixture.redis.port);
  [gateways.short, gateways.patient, gateways.behindProxy] = await Promise.all([
    withReplica(50),
    withReplica(PATIENT_MS),
    withReplica(PATIENT_MS, `redis://127.0.0.1:${proxy.port}`),
  ]);
}, 15_000);

/** Freezes the replica (SIGSTOP): the master's WAIT gets no acknowledgement until it is thawed. */
const freezeReplica = () => process.kill(replica.pid, "SIGSTOP");
const thawReplica = () => process.kill(replica.pid, "SIGCONT");
afterEach(thawReplica);

const json = (body: unknown): RequestInit => ({
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

async function offeredOrder(gateway: TestGateway, riderId: string) {
  const orderId = uniqueId("order");
  await seedOrder(fixture.db, { orderId, customerId: uniqueId("cust") });
  const offer = await gateway.call("/v1/dispatch/offers", {
    method: "POST",
    ...json({ orderId, riderId, city: "london", ttlMs: 30_000 }),
    as: { sub: "dispatcher-1", role: "dispatcher" },
  });
  expect(offer.status).toBe(201);
  const { fencingToken } = (await offer.json()) as { fencingToken: string };
  return { orderId, fencingToken };
}

const accept = (gateway: TestGateway, orderId: string, riderId: string, token: string) =>
  gateway.call(`/v1/rides/${orderId}`, {
    method: "PATCH",
    ...json({ action: "accept", token }),
    as: { sub: riderId, role: "rider" },
  });

const step = (gateway: TestGateway, orderId: string, to: string, expectedVersion: number) =>
  gateway.call(`/v1/orders/${orderId}/status`, {
    method: "POST",
    ...json({ to, expectedVersion }),
    as: { sub: "ops-1", role: "ops" },
  });

/** The error's code and message from an error answer. */
const failure = async (response: Response) =>
  ((await response.json()) as { error: { code: string; message: string } }).error;

const inActiveSet = async (riderId: string, orderId: string) =>
  (await fixture.db.sismember(keys.riderOrders(riderId), orderId)) === 1;

describe("an accept and its retry", () => {
  test("is 503 while no replica has the assignment (the first accept's 503 stays the answer), then answered as the first once one has it", async () => {
    const gateway = gateways.short as TestGateway;
    const riderId = uniqueId("rider");
    const { orderId, fencingToken } = await offeredOrder(gateway, riderId);
    freezeReplica();
    const first = await accept(gateway, orderId, riderId, fencingToken);
    expect(first.status).toBe(503);
    expect((await failure(first)).message).toContain("not confirmed by a replica");
    // The master has the assignment, no replica does: a failover now would lose it, so the
    // retry (the app retries a 5xx) must not acknowledge it either.
    expect(await fixture.db.hget(keys.order(orderId), "status")).toBe("ASSIGNED");
    const retry = await accept(gateway, orderId, riderId, fencingToken);
    expect([retry.status, (await failure(retry)).code]).toEqual([503, "unavailable"]);

    thawReplica();
    let answer: unknown;
    await waitUntil(
      async () => {
        const again = await accept(gateway, orderId, riderId, fencingToken);
        answer = [again.status, await again.json()];
        return again.status !== 503;
      },
      5_000,
      "the retry answered once the replica is back",
    );
    expect(answer).toEqual([200, { orderId, status: "ASSIGNED", version: 2, riderId }]);
    expect(await inActiveSet(riderId, orderId)).toBe(true);
  });

  test("after the restaurant marked the order READY (and after PICKED_UP) gets the order's status and version and writes the active set again; after DELIVERED 409", async () => {
    const gateway = gateways.patient as TestGateway;
    const riderId = uniqueId("rider");
    const { orderId, fencingToken } = await offeredOrder(gateway, riderId);
    expect((await accept(gateway, orderId, riderId, fencingToken)).status).toBe(200);
    // The first accept's gateway died after the assignment, before the rider's active set.
    await fixture.db.srem(keys.riderOrders(riderId), orderId);
    expect((await step(gateway, orderId, "READY", 2)).status).toBe(200);

    const retry = await accept(gateway, orderId, riderId, fencingToken);
    expect([retry.status, await retry.json()]).toEqual([
      200,
      { orderId, status: "READY", version: 3, riderId },
    ]);
    expect(await inActiveSet(riderId, orderId)).toBe(true);

    expect((await step(gateway, orderId, "PICKED_UP", 3)).status).toBe(200);
    const later = await accept(gateway, orderId, riderId, fencingToken);
    expect([later.status, await later.json()]).toEqual([
      200,
      { orderId, status: "PICKED_UP", version: 4, riderId },
    ]);
    const thief = await accept(gateway, orderId, uniqueId("thief"), fencingToken);
    expect(thief.status).toBe(409);

    expect((await step(gateway, orderId, "DELIVERED", 4)).status).toBe(200);
    const ended = await accept(gateway, orderId, riderId, fencingToken);
    expect([ended.status, (await failure(ended)).code]).toEqual([409, "offer_expired"]);
    expect(await inActiveSet(riderId, orderId)).toBe(false);
  });

  test("an order cancelled between the assignment and the active-set write does not stay in the rider's active set", async () => {
    const gateway = gateways.patient as TestGateway;
    const riderId = uniqueId("rider");
    const { orderId, fencingToken } = await offeredOrder(gateway, riderId);
    // The accept's WAIT holds it between the assignment and the SADD while the replica is frozen.
    freezeReplica();
    const accepting = accept(gateway, orderId, riderId, fencingToken);
    await waitUntil(
      async () => (await fixture.db.hget(keys.order(orderId), "status")) === "ASSIGNED",
      5_000,
      "the assignment on the master",
    );
    // A dispatcher's cancel through another gateway (its writes not held behind that WAIT).
    const other = await startTestGateway({
      REDIS_URL: fixture.redis.url,
      RATE_LIMIT_REQUESTS: "100000",
    });
    try {
      expect((await step(other, orderId, "CANCELLED", 2)).status).toBe(200);
    } finally {
      await other.stop();
    }
    expect(await inActiveSet(riderId, orderId)).toBe(false);
    thawReplica();

    const accepted = await accepting;
    expect([accepted.status, await accepted.json()]).toEqual([
      200,
      { orderId, status: "ASSIGNED", version: 2, riderId },
    ]);
    expect(await inActiveSet(riderId, orderId)).toBe(false);
  });

  test("while the first accept is between taking the offer and the assignment, its retry is 503 with Retry-After, then answered as the first", async () => {
    const first = gateways.behindProxy as TestGateway;
    const other = gateways.patient as TestGateway;
    const riderId = uniqueId("rider");
    const { orderId, fencingToken } = await offeredOrder(other, riderId);
    const accepting = holdAfterTakingOffer(() => accept(first, orderId, riderId, fencingToken));
    try {
      await accepting.held;
      // The offer is spent and the order not yet the rider's: the first accept is under way.
      expect(await fixture.db.exists(keys.offerForOrder("london", orderId))).toBe(0);
      expect(await fixture.db.hget(keys.order(orderId), "status")).toBe("CONFIRMED");
      // The app's retry (through another gateway): wait, not "the offer is gone".
      const retry = await accept(other, orderId, riderId, fencingToken);
      expect([retry.status, retry.headers.get("retry-after"), (await failure(retry)).code]).toEqual(
        [503, "1", "unavailable"],
      );
      // Another rider, another token and a decline get what they got before: 409.
      const refused = [
        await accept(other, orderId, uniqueId("thief"), fencingToken),
        await accept(other, orderId, riderId, `${orderId}:999999`),
        await other.call(`/v1/rides/${orderId}`, {
          method: "PATCH",
          ...json({ action: "decline", token: fencingToken }),
          as: { sub: riderId, role: "rider" },
        }),
      ];
      expect(
        await Promise.all(refused.map(async (r) => [r.status, (await failure(r)).code])),
      ).toEqual(Array(3).fill([409, "offer_expired"]));
      // The marker saying so lasts no longer than the assignment may (three WAITs and a second of trips).
      const markerMs = await fixture.db.pttl(keys.offerAccepting("london", orderId));
      expect(markerMs).toBeGreaterThan(0);
      expect(markerMs).toBeLessThanOrEqual(3 * PATIENT_MS + 1_000);
    } finally {
      accepting.release();
    }

    const answered = { orderId, status: "ASSIGNED", version: 2, riderId };
    const firstAnswer = await accepting.answer;
    expect([firstAnswer.status, await firstAnswer.json()]).toEqual([200, answered]);
    expect(await fixture.db.exists(keys.offerAccepting("london", orderId))).toBe(0);
    const retry = await accept(other, orderId, riderId, fencingToken);
    expect([retry.status, await retry.json()]).toEqual([200, answered]);
    expect(await inActiveSet(riderId, orderId)).toBe(true);
  });

  test("when the first accept fails after taking the offer (the order cancelled meanwhile), its retry gets 409 once it has, never 200", async () => {
    const first = gateways.behindProxy as TestGateway;
    const other = gateways.patient as TestGateway;
    const riderId = uniqueId("rider");
    const { orderId, fencingToken } = await offeredOrder(other, riderId);
    const accepting = holdAfterTakingOffer(() => accept(first, orderId, riderId, fencingToken));
    try {
      await accepting.held;
      expect((await step(other, orderId, "CANCELLED", 1)).status).toBe(200);
      const retry = await accept(other, orderId, riderId, fencingToken);
      expect([retry.status, (await failure(retry)).code]).toEqual([503, "unavailable"]);
    } finally {
      accepting.release();
    }

    const firstAnswer = await accepting.answer;
    expect([firstAnswer.status, (await failure(firstAnswer)).code]).toEqual([
      409,
      "illegal_transition",
    ]);
    expect(await fixture.db.exists(keys.offerAccepting("london", orderId))).toBe(0);
    const retry = await accept(other, orderId, riderId, fencingToken);
    expect([retry.status, (await failure(retry)).code]).toEqual([409, "offer_expired"]);
    expect(await inActiveSet(riderId, orderId)).toBe(false);
  });
});

/**
 * Sends `call` (an accept through `gateways.behindProxy`) and holds that gateway's Redis commands
 * from take-offer.lua's "ok" on: the accept has taken the offer, its assignment is not sent.
 */
function holdAfterTakingOffer(call: () => Promise<Response>) {
  const hold = proxy.holdRequestsAfter(TAKE_OFFER_OK);
  return { held: hold.holding, release: hold.release, answer: call() };
}

/** take-offer.lua's "ok" as RESP (a bulk string; the gateway's other replies here never are one). */
const TAKE_OFFER_OK = "$2\r\nok\r\n";
