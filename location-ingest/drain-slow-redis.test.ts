// An ingest's SIGTERM drain while its Redis is slow but answers everything
// (each answer 600 ms late, under the spill's and the flush's own timeouts),
// with the location log on Kafka and Kafka down: real ingest and
// redis-server processes, a delaying TCP proxy between them. The last flush
// and the spill stop at their budgets as when Redis hangs, instead of going
// on batch after batch while each answer comes in time.
import { afterEach, expect, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { settleWithin } from "../core/lifecycle/settle-within";
import type { GeoPing } from "../proto/gen/delivery/tracking/v1/geo_pb";
import { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { startFreezingProxy } from "../test/support/freezing-proxy";
import { pingTrack } from "../test/support/ingest";
import { spawnIngest } from "../test/support/ingest-process";
import { startKafkaBroker } from "../test/support/kafka-broker";
import { startRedis } from "../test/support/redis-server";
import { testToken, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";
import { ingestDrainTimeoutMs } from "./config";

/** Scheduling slack on top of a drain's own waits (two cores, a suite running beside). */
const SLACK_MS = 1_500;
const REPLY_DELAY_MS = 600;
/** The Kafka buffer's size: 2 s for the spill in the cut. */
const KAFKA_BUFFER_RECORDS = 25_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

test("a slow Redis: the last flush and the spill stop at their budgets, the drain exits 0 inside its own worst case, the log says what was spilled and lost", async () => {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const proxy = await startFreezingProxy(redis.port);
  cleanups.push(() => proxy.close());
  const broker = await startKafkaBroker();
  cleanups.push(() => broker.stop());
  await broker.stop();
  const ingest = await spawnIngest({
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    KAFKA_BROKERS: broker.brokers,
    KAFKA_DRAIN_WAIT_MS: "0",
    KAFKA_BUFFER_RECORDS: String(KAFKA_BUFFER_RECORDS),
    // Flushes of 50, one at a time: pings queued behind each other.
    INGEST_MAX_BATCH_PINGS: "50",
    INGEST_MAX_FLUSHES_IN_FLIGHT: "1",
  });
  cleanups.push(() => ingest.kill());
  const client = createClient(
    LocationIngestService,
    createGrpcTransport({ baseUrl: ingest.grpcUrl }),
  );
  const upload = async (pings: GeoPing[], signal?: AbortSignal) => {
    const headers = {
      authorization: `Bearer ${await testToken(uniqueId("rider"), "rider", "london")}`,
    };
    return client.uploadPings(
      (async function* () {
        yield { pings };
      })(),
      { headers, signal },
    );
  };
  // 20,000 acked records Kafka (down) has not taken: twenty spill calls of 1,000 at the drain.
  // An hour old, they are history: logged to Kafka, nothing written to Redis.
  expect((await upload(pingTrack(20_000))).acceptedCount).toBe(20_000);
  proxy.delayReplies(REPLY_DELAY_MS);
  // 5,000 pings of the last 5 s queued in the writer: each the rider's current position, so
  // each of their 100 flushes of 50 writes to Redis, one after another. Their call is
  // cancelled so that only the last flush and the spill hold the drain.
  const recent = pingTrack(5_000);
  for (const [index, ping] of recent.entries())
    ping.recordedAtMs = BigInt(Date.now() - 5_000 + index);
  const flushes = () => ingest.metric("edge_ingest_batch_pings_count");
  const flushed = await flushes();
  const cancel = new AbortController();
  const uploading = upload(recent, cancel.signal).catch(() => "cancelled");
  await waitUntil(async () => (await flushes()) > flushed, 10_000, "the upload's first flush");
  cancel.abort();
  expect(await uploading).toBe("cancelled");

  const started = Date.now();
  ingest.child.kill("SIGTERM");
  const cutMs = ingestDrainTimeoutMs({
    kafkaBrokers: ["kafka"],
    kafkaDrainWaitMs: 0,
    kafkaBufferRecords: KAFKA_BUFFER_RECORDS,
  });
  // Before: the flush went on for 100 × 600 ms, the spill for 20 × 600 ms: cut at 15 s, exit 1.
  expect(await settleWithin(ingest.child.exited, cutMs + SLACK_MS, "still draining")).toBe(0);
  const logged = (msg: string) =>
    ingest.logs.map((line) => JSON.parse(line)).filter((line) => line.msg === msg);
  expect(logged("drain timed out")).toEqual([]);
  // Its own worst case: the cut less its 5 s of slack.
  expect(Date.now() - started).toBeLessThan(cutMs - 5_000 + SLACK_MS);
  // Logged after the spill, with what became of the records: some spilled, the rest lost.
  const [left] = logged(
    "location log: records Kafka did not take by the drain: spilled to redis, or lost",
  );
  expect(left?.records).toBeGreaterThanOrEqual(20_000);
  expect(left?.spilled).toBeLessThan(left?.records);
  expect(left?.spilled + left?.lost.redis_unavailable).toBe(left?.records);
  const lost = logged("location records acked to riders could not be kept");
  expect(lost.map(({ reason, city }) => `${reason} ${city}`)).toEqual(["redis_unavailable london"]);
  expect(lost[0]?.lost).toBe(left?.lost.redis_unavailable);
}, 40_000);
