// The baseline for the ingest bench: the same Redis writes per ping as the
// ingest makes (GEOADD, ZADD, SET ... EX, XADD MAXLEN ~), sent as bare
// ioredis pipelines from one process with no gRPC, checks or batching logic.
//   bun bench/ingest/raw-redis-ceiling.ts --redis redis://127.0.0.1:6379 --seconds 10
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { keys } from "../../core/redis/keys";
import { encodeRiderPosition, RIDER_POSITION_TTL_S } from "../../core/redis/rider-position";
import { polyfillTracingChannelHasSubscribers } from "../../core/redis/tracing-channel-polyfill";
import { LocationRecordSchema } from "../../proto/gen/delivery/tracking/v1/location_record_pb";
import { measureWindow } from "../support/measure-window";

const { values: args } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    seconds: { type: "string", default: "10" },
    riders: { type: "string", default: "2000" },
    "batch-pings": { type: "string", default: "512" },
    "in-flight": { type: "string", default: "2" },
  },
});
const riders = Number(args.riders);
const batchPings = Number(args["batch-pings"]);
// The same client set-up as the ingest's, so the ratio compares like with like.
polyfillTracingChannelHasSubscribers();
const redis = new Redis(args.redis ?? "");
const cities = ["london", "paris", "berlin"];

let seq = 0;
function stagePing(pipeline: ReturnType<Redis["pipeline"]>): void {
  seq += 1;
  const rider = `raw-${seq % riders}`;
  const city = cities[seq % cities.length] as string;
  const now = Date.now();
  const lat = 51.5 + (seq % 1000) * 0.00001;
  const lng = -0.12;
  pipeline.geoadd(keys.cityRiders(city), lng, lat, rider);
  pipeline.zadd(keys.cityRidersSeen(city), now, rider);
  const position = encodeRiderPosition({
    lat,
    lng,
    seq: String(seq),
    recordedAt: now,
    receivedAt: now,
    heading: 0,
    speed: 5,
    accuracy: 5,
    city,
  });
  pipeline.set(keys.riderPosition(rider), position, "EX", RIDER_POSITION_TTL_S);
  const record = create(LocationRecordSchema, {
    riderId: rider,
    city,
    ping: { lat, lng, accuracyM: 5, speedMps: 5, recordedAtMs: BigInt(now), seq: BigInt(seq) },
    receivedAtMs: BigInt(now),
  });
  const log = keys.locationLog(city);
  pipeline.xadd(
    log,
    "MAXLEN",
    "~",
    1_000_000,
    "*",
    "rider",
    rider,
    "record",
    Buffer.from(toBinary(LocationRecordSchema, record)),
  );
}

let written = 0;
let measuring = false;
let running = true;
async function writer(): Promise<void> {
  while (running) {
    const pipeline = redis.pipeline();
    for (let i = 0; i < batchPings; i++) stagePing(pipeline);
    await pipeline.exec();
    if (measuring) written += batchPings;
  }
}

const writers = Array.from({ length: Number(args["in-flight"]) }, () => writer());
const { elapsed, cpuCores } = await measureWindow(1, Number(args.seconds), (open) => {
  measuring = open;
});
running = false;
await Promise.all(writers);
redis.disconnect();
console.log(
  JSON.stringify({
    pingsPerSecond: written / elapsed,
    cpuCores,
  }),
);
