// The baseline for the ingest bench: the Redis writes the ingest makes per
// ping (GEOADD, ZADD, the rider's position through store-rider-positions.lua,
// XADD MAXLEN ~), one command each per ping (the ingest itself batches them
// into one call per city and one per slot: that is not the baseline's), sent
// as bare ioredis pipelines from one process with no gRPC, checks or
// batching logic.
//   bun bench/ingest/raw-redis-ceiling.ts --redis redis://127.0.0.1:6379 --seconds 10
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import {
  encodeLocationRecord,
  encodeStoredPosition,
  RIDER_POSITION_TTL_S,
} from "../../core/position/position-forms";
import type { RiderPosition } from "../../core/position/rider-position";
import { keys } from "../../core/redis/keys";
import { queueStoreRiderPositions, registerScripts } from "../../core/redis/scripts";
import { polyfillTracingChannelHasSubscribers } from "../../core/redis/tracing-channel-polyfill";
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
const redis = registerScripts(new Redis(args.redis ?? ""));
const LIVE_AGE_MS = 120_000;
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
  const position: RiderPosition = {
    riderId: rider,
    city,
    lat,
    lng,
    accuracyM: 5,
    speedMps: 5,
    headingDeg: 0,
    recordedAtMs: now,
    seq: BigInt(seq),
    receivedAtMs: now,
  };
  queueStoreRiderPositions(
    pipeline,
    [{ position, json: encodeStoredPosition(position) }],
    LIVE_AGE_MS,
    RIDER_POSITION_TTL_S,
  );
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
    Buffer.from(encodeLocationRecord(position, false)),
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
