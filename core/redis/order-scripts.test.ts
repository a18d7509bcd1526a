import { describe, expect, test } from "bun:test";
import type { Cluster } from "ioredis";
import { useScriptConnections } from "../../test/support/script-connections";
import { uniqueId } from "../../test/support/tokens";
import { keys, ORDER_PARTITIONS, orderPartition } from "./keys";
import {
  assignRider,
  createOffer,
  releaseAcceptingMarker,
  takeOffer,
  transitionOrder,
} from "./order-scripts";

const connections = useScriptConnections();

describe.each(["standalone", "cluster"] as const)("dispatch scripts on %s", (mode) => {
  test("offer, a foreign and a stale token refused, accept once, assignment only from CONFIRMED", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const city = uniqueId("city").toLowerCase();
    const orderId = uniqueId("order");
    await connection.client.hset(keys.order(orderId), {
      customerId: "c",
      city,
      restaurantId: "r",
      status: "CONFIRMED",
      version: 1,
    });
    const attempts = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        createOffer(connection, { city, riderId: `r${i}`, orderId, ttlMs: 30_000 }),
      ),
    );
    const won = attempts.flatMap((a, i) =>
      a.status === "fulfilled" ? [{ rider: `r${i}`, token: a.value }] : [],
    );
    expect(won).toHaveLength(1);
    const [{ rider, token } = { rider: "", token: "" }] = won;
    await expect(
      takeOffer(connection, { city, riderId: "someone", orderId, token }),
    ).rejects.toMatchObject({ code: "offer_expired" });
    await expect(
      takeOffer(connection, { city, riderId: rider, orderId, token: `${orderId}:0` }),
    ).rejects.toMatchObject({ code: "offer_expired" });
    await takeOffer(connection, { city, riderId: rider, orderId, token });
    await expect(
      takeOffer(connection, { city, riderId: rider, orderId, token }),
    ).rejects.toMatchObject({ code: "offer_expired" });
    expect(await assignRider(connection, { orderId, riderId: rider, token })).toBe(2);
    await expect(assignRider(connection, { orderId, riderId: "r2", token })).rejects.toMatchObject({
      code: "illegal_transition",
    });
    expect(await connection.client.hget(keys.order(orderId), "riderId")).toBe(rider);
  });
});

describe.each(["standalone", "cluster"] as const)(
  "take-offer.lua's accepting marker on %s",
  (mode) => {
    test("an accept that takes the offer marks it for its rider and token; only they are told it is under way, until the marker is released", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const city = uniqueId("city").toLowerCase();
      const orderId = uniqueId("order");
      const riderId = uniqueId("rider");
      const token = await createOffer(connection, { city, riderId, orderId, ttlMs: 30_000 });
      const offer = { city, riderId, orderId, token };
      expect(await takeOffer(connection, offer, 10_000)).toBe("taken");
      const marker = keys.offerAccepting(city, orderId);
      expect(await connection.client.pttl(marker)).toBeGreaterThan(9_000);

      expect(await takeOffer(connection, offer, 10_000)).toBe("accepting");
      for (const other of [
        { ...offer, riderId: uniqueId("thief") },
        { ...offer, token: `${orderId}:0` },
      ])
        await expect(takeOffer(connection, other, 10_000)).rejects.toMatchObject({
          code: "offer_expired",
        });
      // A decline (no marker asked for) is not told about the accept.
      await expect(takeOffer(connection, offer)).rejects.toMatchObject({ code: "offer_expired" });

      // Only its own accept releases it.
      await releaseAcceptingMarker(connection, { ...offer, riderId: uniqueId("thief") });
      expect(await connection.client.exists(marker)).toBe(1);
      await releaseAcceptingMarker(connection, offer);
      expect(await connection.client.exists(marker)).toBe(0);
      await expect(takeOffer(connection, offer, 10_000)).rejects.toMatchObject({
        code: "offer_expired",
      });
    });
  },
);

describe.each(["standalone", "cluster"] as const)("transition-order.lua on %s", (mode) => {
  test("moves only from a legal status at the expected version, once under concurrency", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const orderId = uniqueId("order");
    await connection.client.hset(keys.order(orderId), {
      customerId: "c",
      city: "x",
      restaurantId: "r",
      status: "ASSIGNED",
      version: 2,
      riderId: "r1",
    });
    const racers = await Promise.allSettled(
      Array.from({ length: 30 }, () =>
        transitionOrder(connection, {
          orderId,
          expectedVersion: 2,
          to: "READY",
          legalFrom: ["ASSIGNED"],
        }),
      ),
    );
    expect(racers.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(
      racers.filter(
        (r) => r.status === "rejected" && (r.reason as { code: string }).code === "stale_version",
      ),
    ).toHaveLength(29);
    await expect(
      transitionOrder(connection, {
        orderId,
        expectedVersion: 3,
        to: "DELIVERED",
        legalFrom: ["PICKED_UP"],
      }),
    ).rejects.toMatchObject({ code: "illegal_transition" });
    await expect(
      transitionOrder(connection, {
        orderId: uniqueId("none"),
        expectedVersion: 1,
        to: "READY",
        legalFrom: ["ASSIGNED"],
      }),
    ).rejects.toMatchObject({ code: "not_found" });
    expect(await connection.client.hmget(keys.order(orderId), "status", "version")).toEqual([
      "READY",
      "3",
    ]);
    // A move without a retention leaves the record alone; one with it starts the expiry.
    expect(await connection.client.pttl(keys.order(orderId))).toBe(-1);
    await transitionOrder(connection, {
      orderId,
      expectedVersion: 3,
      to: "CANCELLED",
      legalFrom: ["READY"],
      expireAfterMs: 60_000,
    });
    const ttl = await connection.client.pttl(keys.order(orderId));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});

test("an order's record, outbox and channel share its partition's slot; partitions spread over the cluster", async () => {
  const connection = connections.cluster;
  if (!connection) throw new Error("no connection");
  const client = connection.client as Cluster;
  const slotOf = async (key: string) => Number(await client.call("CLUSTER", "KEYSLOT", key));
  for (const orderId of ["o-1", uniqueId("order"), "ORDER.42:x"]) {
    const partition = orderPartition(orderId);
    expect(partition).toBeGreaterThanOrEqual(0);
    expect(partition).toBeLessThan(ORDER_PARTITIONS);
    const slots = await Promise.all(
      [
        keys.order(orderId),
        keys.orderOutbox(orderId),
        keys.orderTrack(orderId),
        keys.outboxPartition(partition),
        keys.outboxLease(partition),
      ].map(slotOf),
    );
    expect(new Set(slots).size).toBe(1);
  }
  // 10,000 ids fill every partition about evenly, and the partitions' slots sit on every master.
  const counts = new Array<number>(ORDER_PARTITIONS).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const partition = orderPartition(`order-${i}`);
    counts[partition] = (counts[partition] ?? 0) + 1;
  }
  expect(Math.min(...counts)).toBeGreaterThan((10_000 / ORDER_PARTITIONS) * 0.7);
  expect(Math.max(...counts)).toBeLessThan((10_000 / ORDER_PARTITIONS) * 1.3);
  const owners = new Set<string>();
  const ranges = (await client.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
  for (let partition = 0; partition < ORDER_PARTITIONS; partition++) {
    const slot = await slotOf(keys.outboxPartition(partition));
    const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
    owners.add(`${owner?.[0]}:${owner?.[1]}`);
  }
  expect(owners.size).toBe(3);
});
