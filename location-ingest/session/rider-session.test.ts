import { beforeAll, describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import pino from "pino";
import { parseStoredPosition } from "../../core/position/position-forms";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { type GeoPing, GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import { DropReason } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { seedOrder } from "../../test/support/orders";
import { useRedisClient } from "../../test/support/redis-connection";
import { startRedis } from "../../test/support/redis-server";
import { sessionEnvironment } from "../../test/support/session-environment";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { loadIngestConfig } from "../config";
import { RiderSession } from "./rider-session";

const config = loadIngestConfig({
  REDIS_URL: "redis://127.0.0.1:1",
  JWT_SECRET: "x".repeat(32),
  PING_MAX_LIVE_AGE_MS: "60000",
});
const LIVE_AGE_MS = config.limits.maxLiveAgeMs;

let connection: RedisConnection;
let clock = Date.now();

const fixture = useRedisClient({
  stopFirst: async () => {
    await connection?.close();
  },
});

beforeAll(async () => {
  connection = await connectRedis(
    { mode: "standalone", url: fixture.redis.url },
    "rider-session-test",
    pino({ level: "silent" }),
  );
});

/**
 * A session of a fresh rider (or of `riderId`) on the real writer, on the
 * suite's Redis (or `on`); its clock is `clock`.
 */
function sessionOf(riderId = uniqueId("rider"), on: RedisConnection = connection) {
  const { env, crossings } = sessionEnvironment(on, config, () => clock);
  return { session: new RiderSession({ riderId, city: "london" }, env), riderId, crossings };
}

/** A ping `seq` taken just now, `north` metres north of the start. */
function ping(seq: bigint, north = 0): GeoPing {
  return create(GeoPingSchema, {
    lat: 51.5 + north / 111_320,
    lng: -0.12,
    accuracyM: 5,
    speedMps: 5,
    headingDeg: 10,
    recordedAtMs: BigInt(clock),
    seq,
  });
}

const storedSeq = async (riderId: string) =>
  parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.seq;

describe("accept", () => {
  test("a ping is stored and acked; a repeat or an older seq is dropped with its reason", async () => {
    const { session, riderId } = sessionOf();
    const first = await session.accept(ping(5n));
    expect(first.dropped).toEqual([]);
    expect(first.lastAcceptedSeq).toBe(5n);
    expect(first.nextIntervalMs).toBe(config.interval.movingMs);
    expect(await storedSeq(riderId)).toBe(5n);
    for (const seq of [5n, 4n]) {
      const ack = await session.accept(ping(seq, 1));
      expect(ack.dropped.map((d) => [d.seq, d.reason])).toEqual([[seq, DropReason.OUT_OF_ORDER]]);
      expect(ack.lastAcceptedSeq).toBe(5n);
    }
  });

  test("a new session (a reconnect, another node) starts from the stored position", async () => {
    const { session, riderId } = sessionOf();
    await session.accept(ping(10n));
    const again = sessionOf(riderId).session;
    expect((await again.accept(ping(9n, 1))).dropped[0]?.reason).toBe(DropReason.OUT_OF_ORDER);
    expect((await again.accept(ping(11n, 2))).dropped).toEqual([]);
  });

  test("a seq of 2^64-1 holds a reinstalled app back for the live-age bound only", async () => {
    const { session, riderId } = sessionOf();
    await session.accept(ping(2n ** 64n - 1n));
    clock += 1_000;
    // The app lost its seq and starts again from 1: refused while the last fix is live...
    expect((await session.accept(ping(1n, 5))).dropped[0]?.reason).toBe(DropReason.OUT_OF_ORDER);
    const reinstalled = sessionOf(riderId).session;
    expect((await reinstalled.accept(ping(1n, 5))).dropped[0]?.reason).toBe(
      DropReason.OUT_OF_ORDER,
    );
    // ...and taken once it was received longer ago than that, by this session and in Redis.
    clock += LIVE_AGE_MS;
    const ack = await reinstalled.accept(ping(1n, 10));
    expect(ack.dropped).toEqual([]);
    expect(ack.lastAcceptedSeq).toBe(1n);
    expect(await storedSeq(riderId)).toBe(1n);
    expect((await reinstalled.accept(ping(2n, 15))).dropped).toEqual([]);
  });

  test("when another stream stored a newer position, the ping is OUT_OF_ORDER and the session catches up", async () => {
    const { session, riderId } = sessionOf();
    await session.accept(ping(1n));
    // Another node's session of the same rider (its own copy of the state) moves on.
    const elsewhere = sessionOf(riderId).session;
    expect((await elsewhere.accept(ping(50n, 3))).dropped).toEqual([]);
    clock += 1;
    const ack = await session.accept(ping(2n, 4));
    expect(ack.dropped.map((d) => d.reason)).toEqual([DropReason.OUT_OF_ORDER]);
    expect(await storedSeq(riderId)).toBe(50n);
    // It read the stored position again: 51 follows it, 3 does not.
    expect((await session.accept(ping(3n, 5))).dropped[0]?.reason).toBe(DropReason.OUT_OF_ORDER);
    expect((await session.accept(ping(51n, 6))).dropped).toEqual([]);
  });
});

describe("active orders", () => {
  test("positions go to the rider's active orders only; ended, expired and other riders' orders leave the set", async () => {
    const { session, riderId } = sessionOf();
    const [active, delivered, cancelled, reassigned, expired] = Array.from({ length: 5 }, () =>
      uniqueId("order"),
    ) as [string, string, string, string, string];
    await seedOrder(fixture.db, { orderId: active, customerId: "c1", riderId });
    await seedOrder(fixture.db, {
      orderId: delivered,
      customerId: "c1",
      riderId,
      status: "DELIVERED",
    });
    await seedOrder(fixture.db, {
      orderId: cancelled,
      customerId: "c1",
      riderId,
      status: "CANCELLED",
    });
    await seedOrder(fixture.db, { orderId: reassigned, customerId: "c1", riderId: "someone-else" });
    await fixture.db.sadd(keys.riderOrders(riderId), reassigned, expired);
    const subscriber = new Redis(fixture.redis.url);
    const heard = new Set<string>();
    const orders = [active, delivered, cancelled, reassigned, expired];
    await subscriber.subscribe(...orders.map((orderId) => keys.orderTrack(orderId)));
    subscriber.on("message", (channel: string) => heard.add(channel));

    await session.accept(ping(1n));
    await waitUntil(() => heard.size > 0);
    // One more round trip for anything else to arrive.
    await fixture.db.ping();
    expect([...heard]).toEqual([keys.orderTrack(active)]);
    expect(await fixture.db.smembers(keys.riderOrders(riderId))).toEqual([active]);
    subscriber.disconnect();
  });

  test("after an orders-changed message the next position reaches the new order", async () => {
    const { session, riderId } = sessionOf();
    await session.accept(ping(1n));
    const orderId = uniqueId("order");
    await seedOrder(fixture.db, { orderId, customerId: "c1", riderId });
    session.ordersChanged();
    const subscriber = new Redis(fixture.redis.url);
    const frames: string[] = [];
    await subscriber.subscribe(keys.orderTrack(orderId));
    subscriber.on("message", (_channel: string, message: string) => frames.push(message));
    await session.accept(ping(2n, 1));
    await waitUntil(() => frames.length === 1);
    expect(JSON.parse(frames[0] ?? "{}").position.seq).toBe("2");
    subscriber.disconnect();
  });
  test("riders connected together re-read their orders spread over 5-10 s, each within 10 s", async () => {
    const smembersCalls = async () => {
      const stats = await fixture.db.info("commandstats");
      return Number(/cmdstat_smembers:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    };
    const riders = Array.from({ length: 40 }, () => sessionOf().session);
    const start = clock;
    let seq = 1n;
    // Each ping's background read is sent on the session's connection: a PING behind it on
    // that connection answers once Redis has served it.
    const pingAll = async () => {
      await Promise.all(riders.map((session) => session.accept(ping(seq))));
      seq++;
      await connection.client.ping();
    };
    try {
      await pingAll();
      const readsBySecond: number[] = [];
      for (let second = 1; second <= 10; second++) {
        clock = start + second * 1_000;
        const before = await smembersCalls();
        await pingAll();
        readsBySecond.push((await smembersCalls()) - before);
      }
      // In step, all 40 would read at second 10; none may be later, none earlier than 5 s.
      expect(readsBySecond.slice(0, 4)).toEqual([0, 0, 0, 0]);
      expect(readsBySecond.slice(4).reduce((sum, reads) => sum + reads, 0)).toBe(riders.length);
      expect(readsBySecond.slice(4).filter((reads) => reads > 0).length).toBeGreaterThanOrEqual(3);
    } finally {
      clock = Date.now();
    }
  });
});

describe("backlog", () => {
  test("an upload is judged in itself; only fresh pings that follow the live position become it", async () => {
    const { session, riderId } = sessionOf();
    await session.accept(ping(100n));
    const old = (seq: bigint, minutes: number) =>
      create(GeoPingSchema, {
        ...ping(seq),
        recordedAtMs: BigInt(clock - minutes * 60_000),
        lat: 51.5 - minutes * 0.001,
      });
    const upload = session.backlog();
    await upload.accept([old(20n, 30), old(21n, 20), old(21n, 19), old(22n, 10)]);
    await upload.accept([create(GeoPingSchema, { ...ping(101n, 3) })]);
    const result = upload.result();
    expect(result.acceptedCount).toBe(4);
    expect(result.dropped.map((d) => [d.seq, d.reason])).toEqual([[21n, DropReason.OUT_OF_ORDER]]);
    expect(result.lastAcceptedSeq).toBe(101n);
    expect(await storedSeq(riderId)).toBe(101n);
    const logged = (await fixture.db.xrange(keys.locationLog("london"), "-", "+")).filter(
      ([, fields]) => fields[fields.indexOf("rider") + 1] === riderId,
    );
    expect(logged).toHaveLength(5);
  });
});

describe("when Redis fails", () => {
  test("a ping that could not be stored is dropped UNAVAILABLE and may be sent again", async () => {
    const own = await startRedis();
    const ownConnection = await connectRedis(
      { mode: "standalone", url: own.url },
      "rider-session-outage",
      pino({ level: "silent" }),
    );
    try {
      const { session } = sessionOf(uniqueId("rider"), ownConnection);
      expect((await session.accept(ping(1n))).dropped).toEqual([]);
      await own.kill();
      await waitUntil(() => !ownConnection.isReady());
      const down = await session.accept(ping(2n, 1));
      expect(down.dropped.map((d) => d.reason)).toEqual([DropReason.UNAVAILABLE]);
      expect(down.lastAcceptedSeq).toBe(1n);
      await own.restart();
      await ownConnection.waitReady(10_000);
      const again = await session.accept(ping(2n, 1));
      expect(again.dropped).toEqual([]);
      expect(again.lastAcceptedSeq).toBe(2n);
    } finally {
      await ownConnection.close();
      await own.stop();
    }
  });
});
