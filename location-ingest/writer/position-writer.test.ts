import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import calculateSlot from "cluster-key-slot";
import pino from "pino";
import type { RedisConfig } from "../../core/config/shared-config";
import { createMetricsRegistry } from "../../core/observability/metrics";
import { parseStoredPosition } from "../../core/position/position-forms";
import type { RiderPosition } from "../../core/position/rider-position";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { SOME_POSITION } from "../../test/support/positions";
import {
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { createIngestMetrics } from "../metrics";
import { createPositionWriter, type PositionWrite } from "./position-writer";

const LIVE_AGE_MS = 60_000;

function connect(config: RedisConfig, waitMs?: number) {
  return connectRedis(config, "position-writer-test", pino({ level: "silent" }), { waitMs });
}

function writerOn(
  connection: RedisConnection,
  options: { maxQueued?: number; maxInFlight?: number; maxBatch?: number } = {},
) {
  return createPositionWriter({
    connection,
    locationLog: { kind: "redis-stream", maxLen: 1_000 },
    metrics: createIngestMetrics(createMetricsRegistry("ingest")),
    maxQueued: options.maxQueued ?? 1_000,
    maxBatch: options.maxBatch ?? 64,
    maxInFlight: options.maxInFlight ?? 2,
    restartAfterMs: LIVE_AGE_MS,
  });
}

const live = (position: Partial<RiderPosition>): PositionWrite => ({
  position: { ...SOME_POSITION, riderId: uniqueId("rider"), receivedAtMs: Date.now(), ...position },
  current: true,
  orderIds: [],
  backfill: false,
});

/**
 * One flush (written in one tick): riders `a` and `b` with pings out of
 * order, `b` already stored at seq 7. Each ping gets its own outcome, judged
 * in the order written, and each rider ends at its highest seq.
 */
async function oneFlushKeepsEachRidersOrder(connection: RedisConnection, a: string, b: string) {
  const writer = writerOn(connection);
  const at = (riderId: string, seq: bigint) => live({ riderId, seq });
  expect(await writer.write(at(b, 7n))).toBe("stored");
  const outcomes = await Promise.all(
    [at(a, 5n), at(b, 6n), at(a, 3n), at(a, 6n), at(b, 8n)].map((write) => writer.write(write)),
  );
  expect(outcomes).toEqual(["stored", "not_newer", "not_newer", "stored", "stored"]);
  for (const [riderId, seq] of [
    [a, 6n],
    [b, 8n],
  ] as const) {
    const stored = parseStoredPosition(await connection.client.get(keys.riderPosition(riderId)));
    expect(stored?.seq).toBe(seq);
  }
}

describe("on one redis-server", () => {
  let redis: RedisServer;
  let connection: RedisConnection;
  beforeAll(async () => {
    redis = await startRedis();
    connection = await connect({ mode: "standalone", url: redis.url });
  });
  afterAll(async () => {
    await connection?.close();
    await redis?.stop();
  });

  test("each write resolves with its own outcome: stored, or not_newer when Redis holds a newer position", async () => {
    const first = live({ seq: 10n });
    const riderId = first.position.riderId;
    const writer = writerOn(connection);
    const outcomes = await Promise.all([
      writer.write(first),
      writer.write(live({ seq: 3n })),
      writer.write({ ...first, position: { ...first.position, seq: 11n } }),
    ]);
    expect(outcomes).toEqual(["stored", "stored", "stored"]);
    expect(await writer.write({ ...first, position: { ...first.position, seq: 9n } })).toBe(
      "not_newer",
    );
    const stored = parseStoredPosition(await connection.client.get(keys.riderPosition(riderId)));
    expect(stored?.seq).toBe(11n);
    // The history has every one, the not-newer one too (it was a real fix).
    const logged = (await connection.client.xrange(keys.locationLog("london"), "-", "+")).filter(
      ([, fields]) => fields[fields.indexOf("rider") + 1] === riderId,
    );
    expect(logged).toHaveLength(3);
  });

  test("positions of one flush share one store call: each rider's pings keep their order and their own outcome", async () => {
    await oneFlushKeepsEachRidersOrder(connection, uniqueId("rider"), uniqueId("rider"));
  });

  test("overload: past the queue bound writes are refused at once; those queued are written when Redis answers again", async () => {
    const writer = writerOn(connection, { maxQueued: 3, maxInFlight: 1 });
    process.kill(redis.pid, "SIGSTOP");
    try {
      // One flush goes out (and hangs), three wait behind it, the rest are refused.
      const first = writer.write(live({ seq: 1n }));
      await new Promise((resolve) => setImmediate(resolve));
      const queued = [2n, 3n, 4n].map((seq) => writer.write(live({ seq })));
      const refused = await Promise.all([
        writer.write(live({ seq: 5n })),
        writer.write(live({ seq: 6n })),
      ]);
      expect(refused).toEqual(["overloaded", "overloaded"]);
      // The hung flush is reported at its deadline; the queued ones go out after it.
      expect(await first).toBe("unavailable");
      process.kill(redis.pid, "SIGCONT");
      expect(await Promise.all(queued)).toEqual(["stored", "stored", "stored"]);
    } finally {
      process.kill(redis.pid, "SIGCONT");
    }
  }, 15_000);

  test("drain while Redis hangs: the hung flush's timeout refuses what is still queued, not one timeout per batch", async () => {
    const writer = writerOn(connection, { maxInFlight: 1, maxBatch: 1 });
    process.kill(redis.pid, "SIGSTOP");
    try {
      const first = writer.write(live({ seq: 1n }));
      await new Promise((resolve) => setImmediate(resolve));
      // Three batches of one behind the hung flush: three more flush timeouts before.
      const settled: string[] = [];
      const queued = [2n, 3n, 4n].map((seq) =>
        writer.write(live({ seq })).then((outcome) => settled.push(outcome)),
      );
      const drained = writer.drain();
      expect(await first).toBe("unavailable");
      // Answered with the hung flush, never sent: the apps send them again.
      expect(settled).toEqual(["unavailable", "unavailable", "unavailable"]);
      await Promise.all([drained, ...queued]);
    } finally {
      process.kill(redis.pid, "SIGCONT");
    }
  }, 15_000);
});

describe("on a Redis Cluster", () => {
  let cluster: RedisCluster;
  let connection: RedisConnection;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    connection = await connect({ mode: "cluster", nodes: cluster.nodes }, 10_000);
  });
  afterAll(async () => {
    await connection?.close();
    await cluster?.stop();
  });

  test("riders whose keys share a slot share a store call, others get their own: each rider's order holds", async () => {
    const a = uniqueId("rider");
    let b = uniqueId("rider");
    while (calculateSlot(keys.riderPosition(b)) !== calculateSlot(keys.riderPosition(a)))
      b = uniqueId("rider");
    await oneFlushKeepsEachRidersOrder(connection, a, b);
    await oneFlushKeepsEachRidersOrder(connection, uniqueId("rider"), uniqueId("rider"));
  });

  test("one shard failing: its positions are unavailable, the other shards' are stored in the same flush", async () => {
    await connection.client.set("warm-up", "1");
    const cityMaster = await cluster.masterOf(keys.cityRiders("london"));
    const masters = await Promise.all(
      Array.from({ length: 30 }, () => live({ seq: 1n })).map(async (write) => ({
        write,
        master: await cluster.masterOf(keys.riderPosition(write.position.riderId)),
      })),
    );
    const hung = masters.find(({ master }) => master !== cityMaster)?.master as number;
    // Riders whose last position lives on the hung master, and riders whose keys avoid it.
    const onHung = masters.filter(({ master }) => master === hung).slice(0, 3);
    const elsewhere = masters.filter(({ master }) => master !== hung).slice(0, 3);
    expect([onHung.length, elsewhere.length]).toEqual([3, 3]);
    const writer = writerOn(connection);
    cluster.pause(hung);
    let outcomes: string[];
    try {
      outcomes = await Promise.all(
        [...onHung, ...elsewhere].map(({ write }) => writer.write(write)),
      );
    } finally {
      cluster.resume(hung);
    }
    expect(outcomes).toEqual([...Array(3).fill("unavailable"), ...Array(3).fill("stored")]);
    for (const {
      write: { position },
    } of elsewhere) {
      const stored = await connection.client.get(keys.riderPosition(position.riderId));
      expect(parseStoredPosition(stored)?.seq).toBe(1n);
    }
  }, 20_000);
});
