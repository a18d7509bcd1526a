// An ingest's SIGTERM drain with the location log on Kafka (KAFKA_BROKERS)
// while its Kafka, or its Kafka and its Redis, hang: real ingest and
// redis-server processes, the Kafka wire fixture, a TCP proxy in front of
// Redis that goes silent (a hung Redis, as the ingest sees it). The drain ends by itself
// (exit 0) and what was acked to a rider is kept, or counted lost when
// neither Kafka nor Redis takes it.
import { afterEach, expect, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { settleWithin } from "../core/lifecycle/settle-within";
import { keys } from "../core/redis/keys";
import { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { startFreezingProxy } from "../test/support/freezing-proxy";
import { pingTrack } from "../test/support/ingest";
import { spawnIngest } from "../test/support/ingest-process";
import { ApiKey, startKafkaBroker } from "../test/support/kafka-broker";
import { openPingStream } from "../test/support/ping-stream";
import { startRedis } from "../test/support/redis-server";
import { sendRequestLeftInFlight } from "../test/support/request-in-flight";
import { testToken, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";
import { ingestDrainTimeoutMs } from "./config";

const SEND_PING = "/delivery.tracking.v1.LocationIngestService/SendPing";
/** The Kafka buffer's size, which sets the spill's budget in the cut. */
const KAFKA_BUFFER_RECORDS = 25_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * An ingest relaying to a broker that has taken one record, then hung with
 * a second rider's record held in a Produce: one record acked to its rider
 * (stored in Redis) that Kafka has not taken.
 */
async function ingestWithKafkaHung(kafkaDrainWaitMs: number) {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const redisProxy = await startFreezingProxy(redis.port);
  cleanups.push(() => redisProxy.close());
  const broker = await startKafkaBroker();
  cleanups.push(() => broker.stop());
  const ingest = await spawnIngest({
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    KAFKA_BROKERS: broker.brokers,
    KAFKA_DRAIN_WAIT_MS: String(kafkaDrainWaitMs),
    KAFKA_BUFFER_RECORDS: String(KAFKA_BUFFER_RECORDS),
  });
  cleanups.push(() => ingest.kill());
  const client = createClient(
    LocationIngestService,
    createGrpcTransport({ baseUrl: ingest.grpcUrl }),
  );
  const ackedPing = async (riderId: string) => {
    const stream = openPingStream(client, await testToken(riderId, "rider", "london"));
    const [ping] = pingTrack(1);
    if (!ping) throw new Error("unreachable");
    stream.send(ping);
    expect((await stream.next()).event.case).toBe("ack");
    stream.cancel();
  };
  await ackedPing(uniqueId("rider"));
  // The producer is connected and knows the topic: the next record goes straight to Produce.
  await broker.waitForRecords(1);
  broker.freeze();
  const riderId = uniqueId("rider");
  await ackedPing(riderId);
  await waitUntil(() => broker.heldRequests.includes(ApiKey.produce), 5_000, "a held produce");
  const logged = (msg: string) =>
    ingest.logs.map((line) => JSON.parse(line)).filter((line) => line.msg === msg);
  return { redis, redisProxy, ingest, riderId, logged };
}

test("Kafka and Redis hang: every step gives up by itself, the drain exits 0 inside its cut, the record neither took is counted lost", async () => {
  const kafkaDrainWaitMs = 2_000;
  const { redisProxy, ingest, logged } = await ingestWithKafkaHung(kafkaDrainWaitMs);
  redisProxy.freeze();
  // A new rider's unary ping, asked after the freeze: its session's first read waits on Redis.
  const riderId = uniqueId("rider");
  const token = await testToken(riderId, "rider", "london");
  const body = JSON.stringify({
    ping: { lat: 51.5, lng: -0.12, accuracyM: 5, recordedAtMs: String(Date.now()), seq: "1" },
  });
  const unary = await sendRequestLeftInFlight(
    ingest.httpPort,
    [
      `POST ${SEND_PING} HTTP/1.1`,
      "Content-Type: application/json",
      `Authorization: Bearer ${token}`,
      `Content-Length: ${body.length}`,
    ],
    body,
  );
  // Its session's read sent (so the call is past its draining check): asked before it, the
  // drain answers it 503 `draining` at once (a loaded machine's scheduling did that).
  expect(
    await settleWithin(
      redisProxy.sentWhileFrozen(riderId).then(() => true),
      5_000,
      false,
    ),
  ).toBe(true);
  const started = Date.now();
  ingest.child.kill("SIGTERM");
  // Before: the spill's write to the hung Redis (and Bun's stop of the HTTP/1.1 port, waiting
  // for the unary ping) never ended, and the drain was cut at 15 s: exit 1, the record not counted.
  expect(await ingest.child.exited).toBe(0);
  const tookMs = Date.now() - started;
  expect(await unary.outcome).toBe("closed unanswered");
  const cutMs = ingestDrainTimeoutMs({
    kafkaBrokers: ["kafka"],
    kafkaDrainWaitMs,
    kafkaBufferRecords: KAFKA_BUFFER_RECORDS,
  });
  expect(logged("draining")[0]?.timeoutMs).toBe(cutMs);
  expect(logged("drain timed out")).toEqual([]);
  // Its own worst case is 11 s (the cut less its 5 s of slack); unbounded, it ran to its
  // 15 s cut. Halfway: a loaded machine's scheduling does not fail it, the old drain does.
  expect(tookMs).toBeLessThan(13_000);
  expect(
    logged("location records acked to riders could not be kept").map(({ lost, reason, city }) => ({
      lost,
      reason,
      city,
    })),
  ).toEqual([{ lost: 1, reason: "redis_unavailable", city: "london" }]);
}, 30_000);

test("Kafka hangs, Redis answers: what Kafka did not take by KAFKA_DRAIN_WAIT_MS is in the spill, the drain exits 0", async () => {
  const { redis, ingest, riderId, logged } = await ingestWithKafkaHung(500);
  const started = Date.now();
  ingest.child.kill("SIGTERM");
  expect(await ingest.child.exited).toBe(0);
  // The wait, the spill, then the producer's disconnect (kafkajs waits for the held Produce:
  // cut at 1 s), ~1.5 s in all; unbounded, the disconnect waited out the Produce's request
  // timeout. Halfway: a loaded machine's scheduling does not fail it, the old drain does.
  expect(Date.now() - started).toBeLessThan(4_500);
  const db = new Redis(redis.url);
  try {
    const spilled = await db.xrange(keys.locationSpill("london"), "-", "+");
    expect(spilled.map(([, fields]) => fields[fields.indexOf("rider") + 1])).toEqual([riderId]);
  } finally {
    db.disconnect();
  }
  expect(logged("location records acked to riders could not be kept")).toEqual([]);
}, 20_000);
