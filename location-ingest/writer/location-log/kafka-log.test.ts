import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { keys } from "../../../core/redis/keys";
import { LocationRecordSchema } from "../../../proto/gen/delivery/tracking/v1/location_record_pb";
import { pingTrack, startTestIngest, type TestIngest } from "../../../test/support/ingest";
import { type KafkaBroker, startKafkaBroker } from "../../../test/support/kafka-broker";
import { openPingStream } from "../../../test/support/ping-stream";
import { type RedisServer, startRedis } from "../../../test/support/redis-server";
import { testToken, uniqueId } from "../../../test/support/tokens";
import { LOCATION_TOPIC } from "./kafka-log";

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

async function streamPings(ingest: TestIngest, riderId: string, count: number, startSeq = 1n) {
  const stream = openPingStream(ingest.grpc, await testToken(riderId, "rider", "london"));
  const acks = [];
  for (const ping of pingTrack(count, { startSeq })) {
    stream.send(ping);
    const response = await stream.next();
    if (response.event.case !== "ack") throw new Error("expected an ack");
    acks.push(response.event.value);
  }
  await stream.finish();
  return acks;
}

describe("location log on Kafka (wire-protocol fixture)", () => {
  let broker: KafkaBroker;
  let ingest: TestIngest;

  beforeAll(async () => {
    broker = await startKafkaBroker();
    ingest = await startTestIngest({
      REDIS_URL: redis.url,
      KAFKA_BROKERS: broker.brokers,
      KAFKA_BUFFER_RECORDS: "5",
      KAFKA_RETRY_MAX_MS: "100",
      KAFKA_REPLAY_LEASE_MS: "500",
    });
  });

  afterAll(async () => {
    await ingest?.stop();
    await broker?.stop();
  });

  test("each accepted ping becomes a record on rider-locations keyed by rider id", async () => {
    const riderId = uniqueId("rider");
    await streamPings(ingest, riderId, 3);
    const records = (await broker.waitForRecords(3)).filter((r) => r.key?.toString() === riderId);
    expect(records).toHaveLength(3);
    expect(records.every((r) => r.topic === LOCATION_TOPIC)).toBe(true);
    const decoded = records.map((r) =>
      fromBinary(LocationRecordSchema, r.value ?? new Uint8Array()),
    );
    expect(decoded.map((d) => [d.riderId, d.city, d.ping?.seq, d.backfill])).toEqual([
      [riderId, "london", 1n, false],
      [riderId, "london", 2n, false],
      [riderId, "london", 3n, false],
    ]);
    // With Kafka configured, nothing goes to the Redis stream.
    const db = new Redis(redis.url);
    expect(await db.exists(keys.locationLog("london"))).toBe(0);
    db.disconnect();
  });

  test("with the broker down the Redis path carries on and stays ready; past the buffer records are spilled, then all arrive in order", async () => {
    const riderId = uniqueId("rider");
    await broker.stop();
    // 8 pings against a 5-record buffer: the 6th moves the full buffer to the city's spill in Redis.
    const acks = await streamPings(ingest, riderId, 8);
    expect(acks.every((ack) => ack.dropped.length === 0)).toBe(true);
    expect(acks.at(-1)?.lastAcceptedSeq).toBe(8n);
    const spilled = await ingest.app.registry.getSingleMetricAsString(
      "edge_ingest_location_log_spilled_total",
    );
    expect(spilled).toMatch(/reason="overflow"[^}]*\} 5$/m);
    // Kafka away is no reason to leave the balancer: nothing acked is being lost.
    expect((await fetch(`${ingest.httpUrl}/readyz`)).status).toBe(200);

    const before = broker.records.length;
    await broker.restart();
    const records = await broker.waitForRecords(before + 8, 15_000);
    const mine = records.filter((r) => r.key?.toString() === riderId);
    const seqs = mine.map(
      (r) => fromBinary(LocationRecordSchema, r.value ?? new Uint8Array()).ping?.seq,
    );
    // The replayed spill first, then the buffer that waited behind it: the rider's order holds
    // (folded by seq: a send still out when the buffer moved to the spill may land twice).
    expect([...new Set(seqs)]).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  });
});

// A real broker, when one is given (e.g. KAFKA_BROKERS=127.0.0.1:9092 from docker/compose.yaml).
const realBrokers = process.env.KAFKA_BROKERS;
describe.skipIf(!realBrokers)("location log on a real Kafka (KAFKA_BROKERS is set)", () => {
  test("pings reach rider-locations on the real cluster", async () => {
    const { Kafka, logLevel } = await import("kafkajs");
    const kafka = new Kafka({
      brokers: (realBrokers ?? "").split(","),
      logLevel: logLevel.NOTHING,
    });
    const consumer = kafka.consumer({ groupId: uniqueId("edge-test") });
    await consumer.connect();
    await consumer.subscribe({ topic: LOCATION_TOPIC, fromBeginning: false });
    const riderId = uniqueId("rider");
    const seen: bigint[] = [];
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          if (message.key?.toString() !== riderId || !message.value) return;
          seen.push(fromBinary(LocationRecordSchema, message.value).ping?.seq ?? 0n);
          if (seen.length === 2) resolve();
        },
      });
    });
    const ingest = await startTestIngest({
      REDIS_URL: redis.url,
      KAFKA_BROKERS: realBrokers ?? "",
    });
    try {
      await streamPings(ingest, riderId, 2);
      await done;
      expect(seen).toEqual([1n, 2n]);
    } finally {
      await ingest.stop();
      await consumer.disconnect();
    }
  }, 60_000);
});
