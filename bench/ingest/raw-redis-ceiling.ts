// The baseline for the ingest bench: the Redis writes the ingest makes per
// ping (raw-ping-writes.ts: one command each per ping), sent as bare ioredis
// pipelines from one process with no gRPC, checks or batching logic.
//   bun bench/ingest/raw-redis-ceiling.ts --redis redis://127.0.0.1:6379 --seconds 10
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { registerScripts } from "../../core/redis/scripts";
import { polyfillTracingChannelHasSubscribers } from "../../core/redis/tracing-channel-polyfill";
import { measureWindow } from "../support/measure-window";
import { queueRawPingWrites } from "./raw-ping-writes";

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
const cities = ["london", "paris", "berlin"];

let seq = 0;
function stagePing(pipeline: ReturnType<Redis["pipeline"]>): void {
  seq += 1;
  queueRawPingWrites(pipeline, {
    riderId: `raw-${seq % riders}`,
    city: cities[seq % cities.length] as string,
    lat: 51.5 + (seq % 1000) * 0.00001,
    lng: -0.12,
    seq: BigInt(seq),
  });
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
