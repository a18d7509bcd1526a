import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { createKafkaProducer } from "../../core/kafka/kafka-producer";
import { encodeLocationRecord } from "../../core/position/position-forms";
import { keys } from "../../core/redis/keys";
import { registerScripts } from "../../core/redis/scripts";
import { LOCATION_TOPIC } from "../../location-ingest/writer/location-log/kafka-log";
import { LocationRecordSchema } from "../../proto/gen/delivery/tracking/v1/location_record_pb";
import { freePort } from "../../test/support/free-port";
import { startKafkaBroker } from "../../test/support/kafka-broker";
import { SOME_POSITION } from "../../test/support/positions";
import { startRedis } from "../../test/support/redis-server";
import { spawnBun, waitForOk } from "../support/child";
import { cpuMeter } from "../support/process-stats";

export interface ReplayBenchOptions {
  /** Records waiting in the city's spill when the ingest starts. */
  records: number;
  /** Riders the records belong to (each rider's seqs rise through the spill). */
  riders: number;
  progress: (line: string) => void;
}

export interface ReplayBenchResult {
  options: Omit<ReplayBenchOptions, "progress">;
  /** Spilled records replayed per second (ingest started → spill empty). */
  replayPerSecond: number;
  /** The same records produced straight to the same broker by one kafkajs producer, 1,000 per request. */
  producePerSecond: number;
  /** Records the broker got from the replay, and how many of them were a rider's seq again. */
  delivered: number;
  duplicates: number;
  /** Riders whose records arrived out of seq order (0 expected). */
  riderOrderBreaks: number;
  /** Share of one core during the replay. */
  cpu: Record<string, number>;
}

const ROOT = join(import.meta.dir, "..", "..");
const CITY = "bench-city";
const CHUNK = 1_000;

/**
 * The spill's replay rate (issue 10 item 2): a city's spill filled with
 * `records` LocationRecords, then one ingest process started against the
 * repo's Kafka wire-protocol fixture replays it; the baseline, same run, is
 * the same records produced by a bare kafkajs producer to the same broker,
 * so the ratio is the replay's own cost (Redis reads, the fenced delete).
 */
export async function runReplayBench(options: ReplayBenchOptions): Promise<ReplayBenchResult> {
  const { records, riders, progress } = options;
  const redis = await startRedis();
  const broker = await startKafkaBroker({ topics: [LOCATION_TOPIC] });
  const db = registerScripts(new Redis(redis.url));
  try {
    const entries = Array.from({ length: records }, (_, i) => {
      const position = {
        ...SOME_POSITION,
        city: CITY,
        riderId: `rider-${i % riders}`,
        seq: BigInt(Math.floor(i / riders) + 1),
        recordedAtMs: SOME_POSITION.recordedAtMs + i,
      };
      return { position, record: encodeLocationRecord(position, false) };
    });

    progress(`baseline: ${records} records produced by one kafkajs producer`);
    const producer = createKafkaProducer([broker.brokers], "bench-baseline");
    await producer.connect();
    const producedAt = performance.now();
    for (let from = 0; from < records; from += CHUNK) {
      await producer.send({
        topic: LOCATION_TOPIC,
        acks: -1,
        messages: entries.slice(from, from + CHUNK).map(({ position, record }) => ({
          key: position.riderId,
          value: Buffer.from(record),
          timestamp: String(position.recordedAtMs),
        })),
      });
    }
    const producePerSecond = records / ((performance.now() - producedAt) / 1000);
    await producer.disconnect();
    const baselineRecords = broker.records.length;

    progress(`spill: ${records} records in ${keys.locationSpill(CITY)}`);
    await db.sadd(keys.cities(), CITY);
    for (let from = 0; from < records; from += CHUNK) {
      const args = entries
        .slice(from, from + CHUNK)
        .flatMap(({ position, record }) => [
          position.riderId,
          String(position.recordedAtMs),
          Buffer.from(record),
        ]);
      await db.spillLocations(keys.locationSpill(CITY), records, ...args);
    }

    progress("replay: one ingest process, until the spill is empty");
    const httpPort = await freePort();
    const ingest = spawnBun(join(ROOT, "location-ingest", "main.ts"), [], {
      REDIS_URL: redis.url,
      KAFKA_BROKERS: broker.brokers,
      JWT_SECRET: randomBytes(32).toString("hex"),
      INGEST_PORT: String(await freePort()),
      INGEST_HTTP_PORT: String(httpPort),
      KAFKA_REPLAY_LEASE_MS: "5000",
      LOG_LEVEL: "silent",
    });
    try {
      await waitForOk(`http://127.0.0.1:${httpPort}/readyz`);
      const meter = cpuMeter({ ingest: ingest.pid, redis: redis.pid });
      const startedAt = performance.now();
      const deadline = Date.now() + 300_000;
      while ((await db.xlen(keys.locationSpill(CITY))) > 0) {
        if (Date.now() > deadline) throw new Error("replay bench: the spill did not empty");
        await Bun.sleep(20);
      }
      const replayPerSecond = records / ((performance.now() - startedAt) / 1000);
      const cpu = meter.stop();
      const replayed = broker.records.slice(baselineRecords);
      const last = new Map<string, bigint>();
      const seen = new Set<string>();
      let duplicates = 0;
      let riderOrderBreaks = 0;
      for (const record of replayed) {
        const decoded = fromBinary(LocationRecordSchema, record.value ?? new Uint8Array());
        const seq = decoded.ping?.seq ?? 0n;
        const id = `${decoded.riderId}/${seq}`;
        if (seen.has(id)) {
          duplicates += 1;
          continue;
        }
        seen.add(id);
        if ((last.get(decoded.riderId) ?? 0n) >= seq) riderOrderBreaks += 1;
        last.set(decoded.riderId, seq);
      }
      progress(
        `  ${Math.round(replayPerSecond)} records/s (bare producer ${Math.round(producePerSecond)}/s)`,
      );
      return {
        options: { records, riders },
        replayPerSecond,
        producePerSecond,
        delivered: replayed.length,
        duplicates,
        riderOrderBreaks,
        cpu,
      };
    } finally {
      ingest.kill("SIGTERM");
      await ingest.exited;
    }
  } finally {
    db.disconnect();
    await broker.stop();
    await redis.stop();
  }
}
