import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Cluster } from "ioredis";
import pino from "pino";
import { SOME_POSITION } from "../../test/support/positions";
import {
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { connectRedis, type RedisConnection } from "./client";
import { beginIdempotent, finishIdempotent, renewIdempotent } from "./idempotency-scripts";
import { keys, ORDER_PARTITIONS, orderPartition } from "./keys";
import { holdLease, releaseLease } from "./leases";
import { createOrderRecord } from "./order-record";
import { assignRider, createOffer, takeOffer, transitionOrder } from "./order-scripts";
import {
  type PositionEntry,
  pruneStaleRiders,
  queueRecordPositions,
  takeRateLimit,
} from "./scripts";

const logger = pino({ level: "silent" });
let server: RedisServer;
let cluster: RedisCluster;
const connections: Record<"standalone" | "cluster", RedisConnection | undefined> = {
  standalone: undefined,
  cluster: undefined,
};

beforeAll(async () => {
  [server, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  [connections.standalone, connections.cluster] = await Promise.all([
    connectRedis({ mode: "standalone", url: server.url }, "test", logger),
    connectRedis({ mode: "cluster", nodes: cluster.nodes }, "test", logger, { waitMs: 10_000 }),
  ]);
});

afterAll(async () => {
  await connections.standalone?.close();
  await connections.cluster?.close();
  await Promise.all([server?.stop(), cluster?.stop()]);
});

describe.each(["standalone", "cluster"] as const)("prune-stale-riders.lua on %s", (mode) => {
  test("removes riders last seen at or before the cutoff from both sets, in batches", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    const now = 1_000_000;
    for (let i = 0; i < 25; i++) {
      const rider = `r${i}`;
      // Riders 0-19 were last seen long ago, 20-24 just now.
      const seen = i < 20 ? now - 600_000 : now;
      await client.geoadd(keys.cityRiders(city), -0.12, 51.5, rider);
      await client.zadd(keys.cityRidersSeen(city), seen, rider);
    }
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(15);
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(5);
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(0);
    expect((await client.zrange(keys.cityRiders(city), "0", "-1")).sort()).toEqual([
      "r20",
      "r21",
      "r22",
      "r23",
      "r24",
    ]);
    expect(await client.zcard(keys.cityRidersSeen(city))).toBe(5);
  });

  test("still works after Redis forgets the script (EVALSHA falls back to EVAL)", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const city = uniqueId("city").toLowerCase();
    await connection.client.zadd(keys.cityRidersSeen(city), 1, "old");
    await connection.client.geoadd(keys.cityRiders(city), "0", "0", "old");
    if (mode === "standalone") await connection.client.script("FLUSH");
    else
      await Promise.all(
        (connection.client as Cluster).nodes("master").map((node) => node.script("FLUSH")),
      );
    expect(await pruneStaleRiders(connection.client, city, 10, 100)).toBe(1);
  });
});

describe.each(["standalone", "cluster"] as const)("record-positions.lua on %s", (mode) => {
  test("records current pings in the geo and seen sets, logs every ping in order, and chunks big batches", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    // 1,000 pings of 900 riders (the last 100 riders ping twice): more values than one unpack() takes.
    const entries: PositionEntry[] = Array.from({ length: 1_000 }, (_, i) => ({
      position: {
        ...SOME_POSITION,
        riderId: `r${i % 900}`,
        lng: -0.12 + (i % 900) * 0.0001,
        lat: 51.5 + i * 0.00001,
        receivedAtMs: 1_000 + i,
      },
      current: i % 10 !== 0,
      record: new Uint8Array([i % 256, 7]),
    }));
    const pipeline = client.pipeline();
    queueRecordPositions(pipeline, city, entries, 10_000);
    const [[error, recorded] = []] = (await pipeline.exec()) ?? [];
    expect(error).toBeNull();
    expect(recorded).toBe(1_000);

    const current = entries.filter((e) => e.current);
    expect(await client.zcard(keys.cityRiders(city))).toBe(
      new Set(current.map((e) => e.position.riderId)).size,
    );
    // A rider pinging twice keeps the later position and last-seen time.
    const last = current.filter((e) => e.position.riderId === "r51").at(-1)?.position;
    expect(Number(await client.zscore(keys.cityRidersSeen(city), "r51"))).toBe(
      last?.receivedAtMs ?? -1,
    );
    const [position] = await client.geopos(keys.cityRiders(city), "r51");
    expect(Number(position?.[1])).toBeCloseTo(last?.lat ?? 0, 5);
    // Backlog-only pings are logged but never placed on the map.
    expect(await client.zscore(keys.cityRidersSeen(city), "r0")).toBeNull();

    const log = await client.xrangeBuffer(keys.locationLog(city), "-", "+");
    expect(log).toHaveLength(1_000);
    expect(log.map(([, fields]) => fields[1]?.toString())).toEqual(
      entries.map((e) => e.position.riderId),
    );
    expect(log[3]?.[1][3]).toEqual(Buffer.from([3, 7]));
  });

  test("the log is capped at about MAXLEN: whole stream nodes beyond it go, the newest entries stay", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    const maxLen = 150;
    // Five calls of 100 pings: the cap holds across calls, not only within one.
    for (let call = 0; call < 5; call++) {
      const entries: PositionEntry[] = Array.from({ length: 100 }, (_, i) => ({
        position: { ...SOME_POSITION, riderId: `r${call * 100 + i}` },
        current: true,
        record: new Uint8Array([call, i]),
      }));
      const pipeline = client.pipeline();
      queueRecordPositions(pipeline, city, entries, maxLen);
      await pipeline.exec();
    }
    const length = await client.xlen(keys.locationLog(city));
    // `~` trims whole nodes (stream-node-max-entries, 100 by default): never below the cap.
    expect(length).toBeGreaterThanOrEqual(maxLen);
    expect(length).toBeLessThan(maxLen + 100);
    const [[, newest] = ["", []]] = await client.xrevrangeBuffer(
      keys.locationLog(city),
      "+",
      "-",
      "COUNT",
      1,
    );
    expect(newest[1]?.toString()).toBe("r499");
  });

  test("each ping arrives whole through the packed argument: id, exact times and coordinates, record bytes", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    // A multi-byte id, today's epoch ms, a long record holding every byte value, an empty one.
    const entries: PositionEntry[] = [
      { id: "rïder-ü", record: Uint8Array.from({ length: 600 }, (_, i) => i % 256) },
      { id: "r2", record: new Uint8Array(0) },
    ].map(({ id, record }, i) => ({
      position: {
        ...SOME_POSITION,
        riderId: id,
        lng: -0.123456789012 + i,
        lat: 51.987654321098,
        receivedAtMs: 1_764_662_400_123 + i,
      },
      current: true,
      record,
    }));
    const pipeline = client.pipeline();
    queueRecordPositions(pipeline, city, entries, 10_000);
    const [[error, recorded] = []] = (await pipeline.exec()) ?? [];
    expect(error).toBeNull();
    expect(recorded).toBe(2);
    expect(await client.zscore(keys.cityRidersSeen(city), "rïder-ü")).toBe("1764662400123");
    expect(await client.zscore(keys.cityRidersSeen(city), "r2")).toBe("1764662400124");
    const [position] = await client.geopos(keys.cityRiders(city), "rïder-ü");
    // The geo set keeps 52-bit geohashes: about 1e-6 degrees.
    expect(Number(position?.[0])).toBeCloseTo(-0.123456789012, 5);
    expect(Number(position?.[1])).toBeCloseTo(51.987654321098, 5);
    const log = await client.xrangeBuffer(keys.locationLog(city), "-", "+");
    expect(log.map(([, fields]) => fields[1]?.toString())).toEqual(["rïder-ü", "r2"]);
    expect(log[0]?.[1][3]).toEqual(Buffer.from(entries[0]?.record ?? []));
    expect(log[1]?.[1][3]).toEqual(Buffer.alloc(0));
  });

  test("with the log elsewhere (MAXLEN 0) nothing is written to the stream", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const city = uniqueId("city").toLowerCase();
    const pipeline = connection.client.pipeline();
    const entry = {
      position: { ...SOME_POSITION, riderId: "r1", lng: 2.35, lat: 48.85, receivedAtMs: 5 },
      current: true,
      record: new Uint8Array([1]),
    };
    queueRecordPositions(pipeline, city, [entry], 0);
    await pipeline.exec();
    expect(await connection.client.exists(keys.locationLog(city))).toBe(0);
    expect(await connection.client.zscore(keys.cityRidersSeen(city), "r1")).toBe("5");
  });
});

describe.each(["standalone", "cluster"] as const)("take-rate-limit.lua on %s", (mode) => {
  test("allows `limit` requests per window under concurrency, then refuses until the next window", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const identity = uniqueId("caller");
    const now = 1_800_000_000_000;
    const decisions = await Promise.all(
      Array.from({ length: 50 }, () => takeRateLimit(connection.client, identity, 20, 60_000, now)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    expect(Math.min(...decisions.map((d) => d.remaining))).toBe(0);
    expect(decisions[0]?.resetAtMs).toBe(now - (now % 60_000) + 60_000);
    const nextWindow = await takeRateLimit(connection.client, identity, 20, 60_000, now + 60_000);
    expect(nextWindow).toMatchObject({ allowed: true, remaining: 19 });
  });
});

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

describe.each(["standalone", "cluster"] as const)(
  "idempotency and outbox scripts on %s",
  (mode) => {
    test("one claim per key under concurrency; mismatch, in flight with its lease, replay and release", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const { client } = connection;
      const base = { customerId: uniqueId("cust"), key: uniqueId("key"), requestHash: "h1" };
      const attempts = Array.from({ length: 30 }, (_, i) => ({ ...base, owner: `o${i}` }));
      const starts = await Promise.all(
        attempts.map((claim) => beginIdempotent(client, claim, 10_000)),
      );
      expect(starts.filter((s) => s.kind === "started")).toHaveLength(1);
      const inFlight = starts.filter((s) => s.kind === "in_flight");
      expect(inFlight).toHaveLength(29);
      for (const s of inFlight) expect(s).toMatchObject({ leaseLeftMs: expect.any(Number) });
      const owner = attempts[starts.findIndex((s) => s.kind === "started")] ?? attempts[0];
      if (!owner) throw new Error("no owner");
      const other = { ...base, requestHash: "h2", owner: "o-other" };
      expect((await beginIdempotent(client, other, 10_000)).kind).toBe("mismatch");
      // Only the attempt holding the lease may renew or finish it, even with the same body.
      const sameBodyOtherAttempt = { ...base, owner: "o-late" };
      expect(await renewIdempotent(client, sameBodyOtherAttempt, 10_000)).toBe(false);
      expect(
        await finishIdempotent(connection, sameBodyOtherAttempt, {
          status: 201,
          body: "x",
          keepMs: 10_000,
        }),
      ).toBe(false);
      expect(
        await finishIdempotent(connection, owner, {
          status: 201,
          body: '{"id":1}',
          keepMs: 10_000,
        }),
      ).toBe(true);
      expect(await beginIdempotent(client, sameBodyOtherAttempt, 10_000)).toEqual({
        kind: "replay",
        status: 201,
        body: '{"id":1}',
      });
      const released = { ...owner, key: uniqueId("key") };
      await beginIdempotent(client, released, 10_000);
      expect(await finishIdempotent(connection, released, { status: 0, body: "", keepMs: 0 })).toBe(
        true,
      );
      expect((await beginIdempotent(client, released, 10_000)).kind).toBe("started");
    });

    test("a lease runs out unless renewed; after it ran out the old owner can neither renew nor finish", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const { client } = connection;
      const first = {
        customerId: uniqueId("cust"),
        key: uniqueId("key"),
        requestHash: "h",
        owner: "a",
      };
      expect((await beginIdempotent(client, first, 300)).kind).toBe("started");
      expect(await renewIdempotent(client, first, 5_000)).toBe(true);
      const idemKey = keys.idempotency(first.customerId, first.key);
      expect(await client.pttl(idemKey)).toBeGreaterThan(1_000);
      await client.pexpire(idemKey, 50);
      await waitUntil(async () => (await client.exists(idemKey)) === 0, 2_000);
      expect(await renewIdempotent(client, first, 5_000)).toBe(false);
      const second = { ...first, owner: "b" };
      expect((await beginIdempotent(client, second, 5_000)).kind).toBe("started");
      expect(await finishIdempotent(connection, first, { status: 0, body: "", keepMs: 0 })).toBe(
        false,
      );
      expect((await beginIdempotent(client, first, 5_000)).kind).toBe("in_flight");
    });

    test("create-order-record writes a record once and never resets it", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const order = {
        orderId: uniqueId("order"),
        customerId: "c1",
        city: "london",
        restaurantId: "r1",
        pickup: { lat: 51.5, lng: -0.1 },
        dropoff: { lat: 51.51, lng: -0.11 },
        status: "CONFIRMED",
        version: 1,
      };
      expect(await createOrderRecord(connection, order)).toBe(true);
      await connection.client.hset(keys.order(order.orderId), "status", "ASSIGNED", "version", 2);
      expect(await createOrderRecord(connection, order)).toBe(false);
      expect(
        await connection.client.hmget(keys.order(order.orderId), "status", "version", "city"),
      ).toEqual(["ASSIGNED", "2", "london"]);
    });

    test("a lease has one holder at a time; only its holder renews or gives it back", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const { client } = connection;
      const lease = keys.outboxLease(7);
      await client.del(lease);
      const outcomes = await Promise.all(
        ["g1", "g2", "g3"].map((holder) => holdLease(client, lease, holder, 10_000)),
      );
      expect(outcomes.filter((o) => o === "taken")).toHaveLength(1);
      const holder = ["g1", "g2", "g3"][outcomes.indexOf("taken")] ?? "";
      const other = holder === "g1" ? "g2" : "g1";
      expect(await holdLease(client, lease, holder, 20_000)).toBe("renewed");
      expect(await client.pttl(lease)).toBeGreaterThan(10_000);
      expect(await releaseLease(client, lease, other)).toBe(false);
      expect(await holdLease(client, lease, other, 10_000)).toBe("held");
      expect(await releaseLease(client, lease, holder)).toBe(true);
      expect(await holdLease(client, lease, other, 10_000)).toBe("taken");
      await client.del(lease);
    });
  },
);

describe.each(["standalone", "cluster"] as const)("location spill scripts on %s", (mode) => {
  test("spill-locations refuses past the cap; ack-spilled-locations deletes only for the lease holder", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city");
    const [spill, lease] = [keys.locationSpill(city), keys.locationSpillLease(city)];
    const record = (n: number) => [`r${n}`, String(1_000 + n), Buffer.from([0, n, 255])];
    expect(Number(await client.spillLocations(spill, 3, ...record(1), ...record(2)))).toBe(2);
    // One more fits under the cap of 3; the rest is refused, not trimmed.
    expect(Number(await client.spillLocations(spill, 3, ...record(3), ...record(4)))).toBe(1);
    const entries = await client.xrangeBuffer(spill, "-", "+");
    expect(entries.map(([, fields]) => fields[1]?.toString())).toEqual(["r1", "r2", "r3"]);
    expect(entries[0]?.[1][5]).toEqual(Buffer.from([0, 1, 255]));
    const ids = entries.map(([id]) => id.toString());

    expect(await holdLease(client, lease, "n1", 10_000)).toBe("taken");
    expect(Number(await client.ackSpilledLocations(lease, spill, "n2", ...ids))).toBe(-1);
    expect(await client.xlen(spill)).toBe(3);
    expect(Number(await client.ackSpilledLocations(lease, spill, "n1", ...ids.slice(0, 2)))).toBe(
      2,
    );
    expect(await client.xlen(spill)).toBe(1);
    await client.del(spill, lease);
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
