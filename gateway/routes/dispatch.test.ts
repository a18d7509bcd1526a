import { beforeAll, describe, expect, test } from "bun:test";
import { keys } from "../../core/redis/keys";
import { startTestGateway, type TestGateway } from "../../test/support/gateway";
import { seedOrder } from "../../test/support/orders";
import { north, PICKUP } from "../../test/support/positions";
import { useRedisClient } from "../../test/support/redis-connection";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";

let gateway: TestGateway;
const dispatcher = { sub: "dispatcher-1", role: "dispatcher" } as const;

const fixture = useRedisClient({
  stopFirst: async () => {
    await gateway?.stop();
  },
});

beforeAll(async () => {
  gateway = await startTestGateway({ REDIS_URL: fixture.redis.url, RATE_LIMIT_REQUESTS: "100000" });
});

const json = (body: unknown): RequestInit => ({
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

async function offer(orderId: string, riderId: string, ttlMs = 30_000) {
  return gateway.call("/v1/dispatch/offers", {
    method: "POST",
    ...json({ orderId, riderId, city: "london", ttlMs }),
    as: dispatcher,
  });
}

async function answer(orderId: string, riderId: string, action: string, token: string) {
  return gateway.call(`/v1/rides/${orderId}`, {
    method: "PATCH",
    ...json({ action, token }),
    as: { sub: riderId, role: "rider" },
  });
}

async function newOrder() {
  const orderId = uniqueId("order");
  await seedOrder(fixture.db, { orderId, customerId: uniqueId("cust") });
  return orderId;
}

describe("candidates", () => {
  test("nearest fresh riders first, without stale or offered ones, with the orders each carries; dispatchers only", async () => {
    const city = "london";
    const now = Date.now();
    const riders = {
      near: uniqueId("near"),
      far: uniqueId("far"),
      stale: uniqueId("stale"),
      busy: uniqueId("busy"),
    };
    const at = PICKUP;
    for (const [rider, meters] of [
      [riders.near, 10],
      [riders.far, 1_100],
      [riders.stale, 20],
      [riders.busy, 30],
    ] as const) {
      const { lat, lng } = north(at, meters);
      await fixture.db.geoadd(keys.cityRiders(city), lng, lat, rider);
    }
    for (const [rider, seen] of [
      [riders.near, now],
      [riders.far, now],
      [riders.stale, now - 600_000],
      [riders.busy, now],
    ] as const) {
      await fixture.db.zadd(keys.cityRidersSeen(city), seen, rider);
    }
    await fixture.db.set(keys.offerForRider(city, riders.busy), "o:1", "PX", 30_000);
    await fixture.db.sadd(keys.riderOrders(riders.far), "order-a", "order-b");
    const response = await gateway.call(
      `/v1/dispatch/candidates?city=${city}&lat=${at.lat}&lng=${at.lng}&radiusM=5000&limit=50`,
      {
        as: dispatcher,
      },
    );
    expect(response.status).toBe(200);
    const { candidates } = (await response.json()) as {
      candidates: { riderId: string; distanceM: number; activeOrders: number }[];
    };
    const mine = candidates
      .filter((c) => Object.values(riders).includes(c.riderId))
      .map((c) => [c.riderId, c.activeOrders]);
    expect(mine).toEqual([
      [riders.near, 0],
      [riders.far, 2],
    ]);
    const customer = await gateway.call(
      `/v1/dispatch/candidates?city=${city}&lat=${at.lat}&lng=${at.lng}`,
      {
        as: { sub: "c1", role: "customer" },
      },
    );
    expect(customer.status).toBe(403);
    const bad = await gateway.call("/v1/dispatch/candidates?city=london&lat=91&lng=0", {
      as: dispatcher,
    });
    expect(bad.status).toBe(400);
  });

  test("numbers only in plain decimal, radius and count within their bounds: 400 in the error shape, never a Redis error", async () => {
    const base = "/v1/dispatch/candidates?city=london";
    const refused = [
      "&lat=0x10&lng=0",
      "&lat=%20&lng=0",
      "&lat=1e1&lng=0",
      "&lat=+51&lng=0",
      "&lat=51&lng=Infinity",
      "&lat=51&lng=0&limit=1.5",
      "&lat=51&lng=0&limit=0",
      "&lat=51&lng=0&limit=51",
      "&lat=51&lng=0&radiusM=5001",
      "&lat=51&lng=0&radiusM=-1",
      "&lat=51&lng=0&radiusM=1%2C5",
    ];
    for (const query of refused) {
      const response = await gateway.call(`${base}${query}`, { as: dispatcher });
      const body = (await response.json()) as {
        error: { code: string; message: string; requestId: string };
      };
      expect([query, response.status, body.error.code]).toEqual([query, 400, "bad_request"]);
      expect(body.error.requestId).toBe(response.headers.get("x-request-id") ?? "missing");
    }
    const limit = await gateway.call(`${base}&lat=51&lng=0&limit=1.5`, { as: dispatcher });
    expect(((await limit.json()) as { error: { message: string } }).error.message).toBe(
      "limit must be an integer from 1 to 50",
    );
    // What JavaScript's String(number) prints for most coordinates (up to 17 significant digits) passes.
    for (const query of [
      "&lat=51.5&lng=-0.12&radiusM=5000&limit=50",
      "&lat=-0&lng=000.5",
      `&lat=${0.1 + 0.2}&lng=-0.12345678901234566`,
    ]) {
      expect((await gateway.call(`${base}${query}`, { as: dispatcher })).status).toBe(200);
    }
    const bounded = await startTestGateway({
      REDIS_URL: fixture.redis.url,
      DISPATCH_MAX_RADIUS_M: "1000",
      DISPATCH_MAX_CANDIDATES: "5",
    });
    try {
      expect((await bounded.call(`${base}&lat=51&lng=0`, { as: dispatcher })).status).toBe(200);
      for (const query of ["&lat=51&lng=0&radiusM=1001", "&lat=51&lng=0&limit=6"])
        expect((await bounded.call(`${base}${query}`, { as: dispatcher })).status).toBe(400);
    } finally {
      await bounded.stop();
    }
  });
});

describe("offers and fencing", () => {
  test("200 concurrent offers of different orders to one rider: exactly one wins, the rest rider_busy", async () => {
    const riderId = uniqueId("rider");
    const orders = await Promise.all(Array.from({ length: 200 }, () => newOrder()));
    const responses = await Promise.all(orders.map((orderId) => offer(orderId, riderId)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(199);
    const losers = await Promise.all(
      responses.filter((r) => r.status === 409).map((r) => r.json()),
    );
    expect(new Set(losers.map((b) => (b as { error: { code: string } }).error.code))).toEqual(
      new Set(["rider_busy"]),
    );
  });

  test("an order offered to two riders at once goes to one; tokens are {orderId}:{seq} and increase", async () => {
    const orderId = await newOrder();
    const [a, b] = await Promise.all([
      offer(orderId, uniqueId("rider")),
      offer(orderId, uniqueId("rider")),
    ]);
    expect([a?.status, b?.status].sort()).toEqual([201, 409]);
    const won = (await (a?.status === 201 ? a : b)?.json()) as { fencingToken: string };
    expect(won.fencingToken).toMatch(new RegExp(`^${orderId}:\\d+$`));
    const next = (await (await offer(await newOrder(), uniqueId("rider"))).json()) as {
      fencingToken: string;
    };
    expect(Number(next.fencingToken.split(":").at(-1))).toBeGreaterThan(
      Number(won.fencingToken.split(":").at(-1)),
    );
  });

  test("200 concurrent accepts with mixed tokens and riders: exactly one assignment", async () => {
    const orderId = await newOrder();
    const riderId = uniqueId("rider");
    const { fencingToken } = (await (await offer(orderId, riderId)).json()) as {
      fencingToken: string;
    };
    const attempts = Array.from({ length: 200 }, (_, i) => {
      if (i % 4 === 0) return answer(orderId, riderId, "accept", fencingToken);
      if (i % 4 === 1) return answer(orderId, riderId, "accept", `${orderId}:999999`);
      if (i % 4 === 2) return answer(orderId, uniqueId("thief"), "accept", fencingToken);
      return answer(orderId, riderId, "decline", `${orderId}:1`);
    });
    const responses = await Promise.all(attempts);
    // One assignment; the rider's own accepts that came after it are answered as it was
    // (a retry after a lost answer), or 503 `unavailable` while it was still being made;
    // every other attempt 409.
    const accepted = responses.filter((r) => r.status === 200);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    for (const body of await Promise.all(accepted.map((r) => r.json())))
      expect(body).toEqual({ orderId, status: "ASSIGNED", version: 2, riderId });
    const ownAccepts = responses.filter((_, i) => i % 4 === 0);
    const waiting = ownAccepts.filter((r) => r.status === 503);
    for (const body of await Promise.all(waiting.map((r) => r.json())))
      expect(body).toMatchObject({ error: { code: "unavailable" } });
    expect(accepted.length + waiting.length).toBe(50);
    expect(responses.filter((_, i) => i % 4 !== 0).map((r) => r.status)).toEqual(
      Array(150).fill(409),
    );
    const status = await gateway.call(`/v1/orders/${orderId}/status`, { as: dispatcher });
    expect(await status.json()).toMatchObject({ orderId, status: "ASSIGNED", version: 2, riderId });
    expect(await fixture.db.sismember(keys.riderOrders(riderId), orderId)).toBe(1);
    // The offer is spent: the rider is free for the next one.
    expect((await offer(await newOrder(), riderId)).status).toBe(201);
  });

  test("an accept retried after its answer was lost (same rider, same token) is answered as the first while the order is ASSIGNED, and puts the order back in the rider's active set; other riders and tokens stay 409", async () => {
    const orderId = await newOrder();
    const riderId = uniqueId("rider");
    const { fencingToken } = (await (await offer(orderId, riderId)).json()) as {
      fencingToken: string;
    };
    const first = await answer(orderId, riderId, "accept", fencingToken);
    const accepted = { orderId, status: "ASSIGNED", version: 2, riderId };
    expect([first.status, await first.json()]).toEqual([200, accepted]);
    // The first attempt's gateway died after the assignment, before the rider's active set.
    await fixture.db.srem(keys.riderOrders(riderId), orderId);

    const retry = await answer(orderId, riderId, "accept", fencingToken);
    expect([retry.status, await retry.json()]).toEqual([200, accepted]);
    expect(await fixture.db.sismember(keys.riderOrders(riderId), orderId)).toBe(1);
    const refused = [
      await answer(orderId, uniqueId("thief"), "accept", fencingToken),
      await answer(orderId, riderId, "accept", `${orderId}:999999`),
      await answer(orderId, riderId, "decline", fencingToken),
    ];
    expect(refused.map((r) => r.status)).toEqual([409, 409, 409]);
    // Retries after READY and PICKED_UP, and once the order ended: ride-accept-retry.test.ts.
  });

  test("a late accept after the TTL is 409 offer_expired; another rider's token is refused; decline frees both", async () => {
    const riderId = uniqueId("rider");
    const lateOrder = await newOrder();
    const late = (await (await offer(lateOrder, riderId, 1_000)).json()) as {
      fencingToken: string;
    };
    await waitUntil(
      async () => (await fixture.db.exists(keys.offerForOrder("london", lateOrder))) === 0,
      3_000,
    );
    const lateAnswer = await answer(lateOrder, riderId, "accept", late.fencingToken);
    expect(lateAnswer.status).toBe(409);
    expect(((await lateAnswer.json()) as { error: { code: string } }).error.code).toBe(
      "offer_expired",
    );

    const orderId = await newOrder();
    const { fencingToken } = (await (await offer(orderId, riderId)).json()) as {
      fencingToken: string;
    };
    expect((await answer(orderId, uniqueId("other"), "accept", fencingToken)).status).toBe(409);
    expect((await answer(orderId, riderId, "decline", fencingToken)).status).toBe(200);
    expect(
      await fixture.db.exists(
        keys.offerForRider("london", riderId),
        keys.offerForOrder("london", orderId),
      ),
    ).toBe(0);
    const status = (await (
      await gateway.call(`/v1/orders/${orderId}/status`, { as: dispatcher })
    ).json()) as { status: string };
    expect(status.status).toBe("CONFIRMED");
  });

  test("bad bodies are 400: malformed JSON, missing fields, bad action; offers of a non-CONFIRMED order 409", async () => {
    const orderId = await newOrder();
    const malformed = await gateway.call("/v1/dispatch/offers", {
      method: "POST",
      body: "{nope",
      as: dispatcher,
    });
    expect(malformed.status).toBe(400);
    expect(
      (
        await gateway.call("/v1/dispatch/offers", {
          method: "POST",
          ...json({ orderId }),
          as: dispatcher,
        })
      ).status,
    ).toBe(400);
    expect((await answer(orderId, "r1", "steal", "t")).status).toBe(400);
    const assigned = uniqueId("order");
    await seedOrder(fixture.db, { orderId: assigned, customerId: "c", riderId: "r" });
    const conflict = await offer(assigned, uniqueId("rider"));
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as { error: { code: string } }).error.code).toBe(
      "illegal_transition",
    );
    expect((await offer(uniqueId("missing"), "r1")).status).toBe(404);
  });
});
