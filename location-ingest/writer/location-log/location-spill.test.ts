import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { keys } from "../../../core/redis/keys";
import { LocationIngestService } from "../../../proto/gen/delivery/tracking/v1/ingest_pb";
import { LocationRecordSchema } from "../../../proto/gen/delivery/tracking/v1/location_record_pb";
import { pingTrack, startTestIngest } from "../../../test/support/ingest";
import { type IngestProcess, spawnIngest } from "../../../test/support/ingest-process";
import { type KafkaBroker, startKafkaBroker } from "../../../test/support/kafka-broker";
import { openPingStream } from "../../../test/support/ping-stream";
import { useRedisClient } from "../../../test/support/redis-connection";
import { testToken, uniqueId } from "../../../test/support/tokens";
import { waitUntil } from "../../../test/support/wait";
import { LOCATION_TOPIC } from "./kafka-log";

const fixture = useRedisClient();

/** Kafka settings small enough to overflow and replay within a test. */
const kafkaEnv = (broker: KafkaBroker) => ({
  REDIS_URL: fixture.redis.url,
  KAFKA_BROKERS: broker.brokers,
  KAFKA_BUFFER_RECORDS: "5",
  KAFKA_RETRY_MAX_MS: "100",
  KAFKA_DRAIN_WAIT_MS: "200",
  KAFKA_REPLAY_LEASE_MS: "1000",
});

/** Streams `count` pings as `riderId` of `city` and checks each was acked without a drop. */
async function ackedPings(
  client: Client<typeof LocationIngestService>,
  riderId: string,
  city: string,
  count: number,
): Promise<void> {
  const stream = openPingStream(client, await testToken(riderId, "rider", city));
  for (const ping of pingTrack(count)) {
    stream.send(ping);
    const response = await stream.next();
    if (response.event.case !== "ack") throw new Error("expected an ack");
    expect(response.event.value.dropped).toEqual([]);
  }
  await stream.finish();
}

const grpcClient = (port: number) =>
  createClient(LocationIngestService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));

/** The seqs of `riderId`'s records on rider-locations, in arrival order. */
function seqsOf(broker: KafkaBroker, riderId: string): bigint[] {
  return broker.records
    .filter((r) => r.topic === LOCATION_TOPIC && r.key?.toString() === riderId)
    .map((r) => fromBinary(LocationRecordSchema, r.value ?? new Uint8Array()).ping?.seq ?? 0n);
}

describe("acked location history survives Kafka being away (real ingest processes)", () => {
  let broker: KafkaBroker;
  const nodes: IngestProcess[] = [];

  beforeAll(async () => {
    broker = await startKafkaBroker();
  });

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await broker?.stop();
  });

  test("SIGTERM with Kafka down spills what was acked; once Kafka is back one lease holder replays all of it, in order", async () => {
    await broker.stop();
    const first = await spawnIngest(kafkaEnv(broker));
    const riderId = uniqueId("rider");
    const city = "london";
    const count = 20;
    await ackedPings(grpcClient(first.grpcPort), riderId, city, count);
    // 5 in the buffer, 15 past it went to the spill at once.
    await waitUntil(
      async () => (await first.metric("edge_ingest_location_log_spilled_total")) === 15,
      5_000,
    );
    expect(await first.stop()).toBe(0);
    // The drain kept the buffer too: every acked record is in the city's spill.
    expect(await fixture.db.xlen(keys.locationSpill(city))).toBe(count);
    expect(first.logs.some((line) => line.includes("did not take by the drain"))).toBe(true);

    await broker.restart();
    nodes.push(await spawnIngest(kafkaEnv(broker)), await spawnIngest(kafkaEnv(broker)));
    await waitUntil(async () => (await fixture.db.xlen(keys.locationSpill(city))) === 0, 15_000);
    const replayed = await Promise.all(
      nodes.map((node) => node.metric("edge_ingest_location_log_replayed_total")),
    );
    // One node held the city's lease and replayed everything; the other sent nothing.
    expect(replayed.toSorted((a, b) => a - b)).toEqual([0, count]);
    // Fold by rider and seq: every acked seq, none missing, first copies in order.
    const seqs = seqsOf(broker, riderId);
    expect([...new Set(seqs)]).toEqual(pingTrack(count).map((ping) => ping.seq));
  }, 60_000);
});

test("the spill's cap: records past it are lost, counted by reason (overflow, then at the drain)", async () => {
  const broker = await startKafkaBroker();
  await broker.stop();
  const city = "paris";
  const ingest = await startTestIngest({
    ...kafkaEnv(broker),
    KAFKA_SPILL_MAX_RECORDS: "3",
  });
  const riderId = uniqueId("rider");
  // 10 pings, buffer 5: the 6th moves the full buffer to the spill, where 3 fit and 2 are lost.
  await ackedPings(ingest.grpc, riderId, city, 10);
  const metric = (name: string) => ingest.app.registry.getSingleMetricAsString(name);
  await waitUntil(
    async () =>
      /reason="spill_full"[^}]*\} 2$/m.test(await metric("edge_ingest_location_log_lost_total")),
    5_000,
  );
  expect(await metric("edge_ingest_location_log_spilled_total")).toMatch(
    /reason="overflow"[^}]*\} 3$/m,
  );
  // The drain finds the spill full: the 5 buffered records are lost too, and counted.
  await ingest.stop();
  expect(await metric("edge_ingest_location_log_lost_total")).toMatch(
    /reason="spill_full"[^}]*\} 7$/m,
  );
  expect(await fixture.db.xlen(keys.locationSpill(city))).toBe(3);
});
