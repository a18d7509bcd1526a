// The ingest's position writer alone, this checkout's against another's, in
// one process on one redis-server: the same pings (2,000 riders, two cities,
// no orders, the location log as a Redis stream) through each writer in
// alternating rounds, so the machine's load moves both alike. Reports each
// round's CPU µs per ping of this process and of Redis. No gRPC, no session:
// what a write costs from accepted position to outcome.
//   bun bench/ingest/writer-ab.ts --baseline /path/to/other/checkout [--pings 200000 --rounds 3]
import { parseArgs } from "node:util";
import pino from "pino";
import { startRedis } from "../../test/support/redis-server";
import { cpuSeconds } from "../support/process-stats";

const { values: args } = parseArgs({
  options: {
    baseline: { type: "string" },
    pings: { type: "string", default: "200000" },
    rounds: { type: "string", default: "3" },
  },
});
if (!args.baseline) throw new Error("--baseline <another checkout's root> is required");
const pings = Number(args.pings);
const RIDERS = 2_000;
const CITIES = ["london", "paris"];
/** Writes outstanding at once, as 2,000 rider sessions with one ping each in flight would have. */
const WINDOW = RIDERS;

type Writer = { write(entry: unknown): Promise<string> };

/** A checkout's writer on its own connection (each registers its own scripts). */
async function writerOf(root: string, redisUrl: string): Promise<Writer> {
  const { connectRedis } = await import(`${root}/core/redis/client.ts`);
  const { createPositionWriter } = await import(
    `${root}/location-ingest/writer/position-writer.ts`
  );
  const { createIngestMetrics } = await import(`${root}/location-ingest/metrics.ts`);
  const { createMetricsRegistry } = await import(`${root}/core/observability/metrics.ts`);
  const connection = await connectRedis(
    { mode: "standalone", url: redisUrl },
    "writer-ab",
    pino({ level: "silent" }),
  );
  return createPositionWriter({
    connection,
    locationLog: { kind: "redis-stream", maxLen: 100_000 },
    metrics: createIngestMetrics(createMetricsRegistry("ingest")),
    maxQueued: 50_000,
    maxBatch: 256,
    maxInFlight: 4,
    restartAfterMs: 120_000,
  });
}

let seq = 0n;
async function round(writer: Writer, redisPid: number) {
  const [ownBefore, redisBefore] = [process.cpuUsage(), cpuSeconds(redisPid)];
  const outcomes: Record<string, number> = {};
  let window: Promise<string>[] = [];
  const settle = async () => {
    for (const outcome of await Promise.all(window))
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    window = [];
  };
  for (let i = 0; i < pings; i++) {
    seq += 1n;
    const now = Date.now();
    const position = {
      riderId: `ab-${i % RIDERS}`,
      city: CITIES[i % CITIES.length],
      lat: 51.5 + (i % 100) * 1e-5,
      lng: -0.12,
      accuracyM: 5,
      speedMps: 5,
      headingDeg: 90,
      recordedAtMs: now,
      seq,
      receivedAtMs: now,
    };
    window.push(writer.write({ position, current: true, orderIds: [], backfill: false }));
    if (window.length >= WINDOW) await settle();
  }
  await settle();
  const own = process.cpuUsage(ownBefore);
  return {
    writerMicros: (own.user + own.system) / pings,
    redisMicros: ((cpuSeconds(redisPid) - redisBefore) * 1e6) / pings,
    outcomes,
  };
}

const redis = await startRedis();
try {
  const writers = {
    baseline: await writerOf(args.baseline, redis.url),
    this: await writerOf(`${import.meta.dir}/../..`, redis.url),
  };
  for (let r = 1; r <= Number(args.rounds); r++) {
    for (const [name, writer] of Object.entries(writers)) {
      const { writerMicros, redisMicros, outcomes } = await round(writer, redis.pid);
      console.log(
        `round ${r} ${name.padEnd(8)} writer ${writerMicros.toFixed(1)} µs/ping, redis ${redisMicros.toFixed(1)} µs/ping, ${JSON.stringify(outcomes)}`,
      );
    }
  }
} finally {
  await redis.stop();
}
process.exit(0);
