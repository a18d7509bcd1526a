// Where a streamed ping's heap bytes and CPU go, stage by stage, in one
// process: each stage of the lean gRPC path run for N pings (2,000 riders in
// three cities, as the ingest bench's load sends them) with every garbage
// collection timer off, so the only collections are the forced full ones
// around each stage; a stage's heap bytes are what JavaScriptCore's GC log
// (BUN_JSC_logGC=1) shows it allocated between them, its CPU is
// process.cpuUsage() over the N pings. HTTP/2 itself (node:http2's DATA frames
// in, the response writes) is not staged here: it is what the whole ingest
// allocates per ping (the bench's allocation run) less these stages.
//   bun bench/ingest/ping-stages.ts [--pings 20000 --rounds 3 --only <part of a stage's name>]
// The last two stages compare a per-city flush of 50 pings as one EVALSHA of
// record-positions.lua through an ioredis pipeline and through Bun.RedisClient.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import pino from "pino";
import { createMetricsRegistry } from "../../core/observability/metrics";
import { encodeLocationRecord, encodeStoredPosition } from "../../core/position/position-forms";
import type { RiderPosition } from "../../core/position/rider-position";
import { connectRedis } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { queueRecordPositions } from "../../core/redis/scripts";
import { loadIngestConfig } from "../../location-ingest/config";
import { createIngestMetrics } from "../../location-ingest/metrics";
import { RiderSession } from "../../location-ingest/session/rider-session";
import { encodeGrpcFrame, GrpcFrameReader } from "../../location-ingest/wire/grpc-frames";
import { createPositionWriter } from "../../location-ingest/writer/position-writer";
import { GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { startRedis } from "../../test/support/redis-server";

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? Number(argv[at + 1]) : fallback;
};
const PINGS = option("pings", 20_000);
const ROUNDS = option("rounds", 3);
/** Only the stages whose name contains this. */
const ONLY = argv.includes("--only") ? (argv[argv.indexOf("--only") + 1] ?? "") : "";
const RIDERS = 2_000;
const CITIES = ["london", "paris", "berlin"];

if (!argv.includes("--child")) {
  // Parent: run the stages in a child with the GC log on and no timer-driven collections.
  const child = Bun.spawn([process.execPath, import.meta.path, "--child", ...argv], {
    env: {
      ...process.env,
      BUN_JSC_logGC: "1",
      BUN_GC_TIMER_DISABLE: "1",
      BUN_JSC_collectionTimerMaxPercentCPU: "0",
      BUN_JSC_largeHeapSize: String(2 ** 30),
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  // "START M <kb>kb": the heap at a collection's start; "=> <kb>kb, p=... END]": what it kept.
  const log = await new Response(child.stderr).text();
  const cpu = new Map(
    (await new Response(child.stdout).text())
      .split("\n")
      .filter((line) => line.startsWith("cpu\t"))
      .map((line) => line.split("\t").slice(1) as [string, string]),
  );
  if ((await child.exited) !== 0) throw new Error(`the stages failed:\n${log.slice(-2000)}`);
  const bytes = new Map<string, number[]>();
  let stage: string | undefined;
  let allocated = 0;
  let keptKb: number | undefined;
  for (const line of log.split("\n")) {
    const mark = /^stage (begin|end) (.+)$/.exec(line);
    if (mark) {
      if (mark[1] === "begin") [stage, allocated] = [mark[2], 0];
      else if (stage) {
        bytes.set(stage, [...(bytes.get(stage) ?? []), (allocated * 1024) / PINGS]);
        stage = undefined;
      }
      continue;
    }
    // A collection's log spans lines: its start, its increments, its end.
    const started = /START M (\d+)kb/.exec(line);
    if (started && stage && keptKb !== undefined) allocated += Number(started[1]) - keptKb;
    const ended = /=> (\d+)kb, p=[^\]]* END\]/.exec(line);
    if (ended) keptKb = Number(ended[1]);
  }
  const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
  console.log(`${PINGS} pings per stage, ${ROUNDS} rounds, load average ${load}`);
  console.log(
    "| stage | heap bytes per ping, less the floor (each round) | CPU µs per ping (each round) |",
  );
  console.log("| --- | ---: | ---: |");
  const floor = bytes.get("nothing") ?? [];
  for (const [name, perRound] of bytes) {
    const net = perRound.map((b, round) =>
      (b - (name === "nothing" ? 0 : (floor[round] ?? 0))).toFixed(0),
    );
    console.log(`| ${name} | ${net.join(" / ")} | ${cpu.get(name)} |`);
  }
  process.exit(0);
}

const redis = await startRedis();
const config = loadIngestConfig({ REDIS_URL: redis.url, JWT_SECRET: "x".repeat(32) });
const connection = await connectRedis(config.redis, "stages", pino({ level: "silent" }));
const metrics = createIngestMetrics(createMetricsRegistry("ingest"));
const writer = createPositionWriter({
  connection,
  locationLog: { kind: "redis-stream", maxLen: config.locationStreamMaxLen },
  metrics,
  maxQueued: config.maxQueuedPings,
  maxBatch: config.maxBatchPings,
  maxInFlight: config.maxFlushesInFlight,
  restartAfterMs: config.limits.maxLiveAgeMs,
});
const { limits, interval, geofence } = config;
const stored = () => Promise.resolve("stored" as const);
const stubbed = { connection, metrics, limits, interval, geofence, now: Date.now };
Object.assign(stubbed, { writer: { write: stored, drain: stored }, recordCrossings: () => {} });
const riders = Array.from({ length: RIDERS }, (_, i) => {
  const rider = { riderId: `rider-${i}`, city: CITIES[i % CITIES.length] as string };
  return {
    ...rider,
    session: new RiderSession(rider, stubbed as never),
    seq: BigInt(Date.now()) * 1000n,
  };
});
let moved = 0;
/** The next N pings, in the load process's pattern: each rider ~1 m further north per ping. */
function nextPings() {
  moved += 1;
  return Array.from({ length: PINGS }, (_, i) => {
    const rider = riders[i % RIDERS] as (typeof riders)[number];
    rider.seq += 1n;
    const ping = create(GeoPingSchema, {
      lat: 51.5 + (i % 100) * 0.001 + (moved * PINGS + i) * 1e-7,
      lng: -0.1,
      accuracyM: 5,
      speedMps: 5,
      headingDeg: 0,
      recordedAtMs: BigInt(Date.now()),
      seq: rider.seq,
    });
    const position: RiderPosition = {
      ...rider,
      ...ping,
      recordedAtMs: Number(ping.recordedAtMs),
      receivedAtMs: Date.now(),
    };
    const frame = encodeGrpcFrame(
      toBinary(StreamPingsRequestSchema, create(StreamPingsRequestSchema, { ping })),
    );
    return { rider, ping, position, frame, ack: rider.session.ack([]) };
  });
}
type Inputs = ReturnType<typeof nextPings>;

/** Up to RIDERS pings in flight at once, as one per rider stream (what the writer sees under load). */
async function windowed(inputs: Inputs, run: (input: Inputs[number]) => Promise<unknown>) {
  for (let start = 0; start < inputs.length; start += RIDERS)
    await Promise.all(inputs.slice(start, start + RIDERS).map(run));
}

const reader = new GrpcFrameReader(4096);
const FLUSH = 50;
const bunRedis = new Bun.RedisClient(redis.url);
const recordSha = String(
  await connection.client.script(
    "LOAD",
    await Bun.file(new URL("../../core/redis/lua/record-positions.lua", import.meta.url)).text(),
  ),
);

/** A stage that does `work` once per ping. */
const each = (work: (ping: Inputs[number]) => unknown) => (inputs: Inputs) => () => {
  for (const input of inputs) work(input);
};
/** A stage of record-positions.lua calls of FLUSH pings each, through `send`, as the writer queues them. */
const flushes = (send: (args: (string | Buffer)[]) => Promise<unknown>) => (inputs: Inputs) => {
  const calls: (string | Buffer)[][] = [];
  const pipeline = {
    recordPositions: (...args: (string | number | Buffer)[]) =>
      calls.push(args.map((arg) => (typeof arg === "number" ? String(arg) : arg))),
  };
  for (let at = 0; at < inputs.length; at += FLUSH) {
    const entries = inputs.slice(at, at + FLUSH).map(({ position }) => ({
      position,
      current: true,
      record: encodeLocationRecord(position, false),
    }));
    queueRecordPositions(pipeline as never, "london", entries, 1_000_000);
  }
  return async () => {
    for (const args of calls) await send(args);
  };
};

/** Each stage: its inputs prepared (not measured), then a run over them (measured). */
const stages: [string, (inputs: Inputs) => () => unknown][] = [
  // The method's floor (a few MB, whatever the stage): two forced collections with nothing
  // between. The other stages' bytes are shown less the same round's floor.
  ["nothing", () => () => undefined],
  ["gRPC frame read", each(({ frame }) => reader.push(frame))],
  [
    "protobuf decode (StreamPingsRequest)",
    each(({ frame }) => fromBinary(StreamPingsRequestSchema, frame.subarray(5))),
  ],
  [
    "session accept (checks, position, ack; writer stubbed)",
    (inputs) => () => windowed(inputs, ({ rider, ping }) => rider.session.accept(ping)),
  ],
  [
    "ack encode (response, toBinary, gRPC frame)",
    each(({ ack }) =>
      encodeGrpcFrame(
        toBinary(
          StreamPingsResponseSchema,
          create(StreamPingsResponseSchema, { event: { case: "ack", value: ack } }),
        ),
      ),
    ),
  ],
  ["writer: LocationRecord encode", each(({ position }) => encodeLocationRecord(position, false))],
  [
    "writer: stored JSON encode and its key",
    each(({ position }) => [encodeStoredPosition(position), keys.riderPosition(position.riderId)]),
  ],
  [
    "writer, whole (batches, ioredis, Redis replies)",
    (inputs) => () =>
      windowed(inputs, ({ position }) =>
        writer.write({ position, current: true, orderIds: [], backfill: false }),
      ),
  ],
  [
    `record-positions.lua, ${FLUSH} pings per EVALSHA, ioredis pipeline`,
    flushes((args) =>
      connection.client
        .pipeline()
        .evalsha(recordSha, 3, ...args)
        .exec(),
    ),
  ],
  [
    `record-positions.lua, ${FLUSH} pings per EVALSHA, Bun.RedisClient send`,
    flushes((args) => bunRedis.send("EVALSHA", [recordSha, "3", ...(args as string[])])),
  ],
];

const cpuPerRound = new Map<string, string[]>();
for (let round = 0; round <= ROUNDS; round += 1) {
  for (const [name, stage] of stages) {
    if (!name.includes(ONLY)) continue;
    const run = stage(nextPings());
    if (round === 0) {
      await run(); // warm-up: JIT tiers, sessions seeded, connections open
      continue;
    }
    Bun.gc(true);
    console.error(`stage begin ${name}`);
    const before = process.cpuUsage();
    await run();
    const used = process.cpuUsage(before);
    Bun.gc(true);
    console.error(`stage end ${name}`);
    const micros = (used.user + used.system) / PINGS;
    cpuPerRound.set(name, [...(cpuPerRound.get(name) ?? []), micros.toFixed(2)]);
  }
}
for (const [name, micros] of cpuPerRound) console.log(`cpu\t${name}\t${micros.join(" / ")}`);
bunRedis.close();
connection.client.disconnect();
await redis.stop();
