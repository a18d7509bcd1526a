import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { startRedis } from "../../test/support/redis-server";
import { cpuMeter } from "../support/process-stats";
import { type FloorStep, startFloorSteps } from "./floor-steps";
import { type LoadRun, runLoad } from "./load-run";
import { moveToCpus, type ServerUnderTest, startIngest, startPeer } from "./servers-under-test";

export interface IngestBenchOptions {
  streams: number;
  seconds: number;
  /** Pings/s of the open-loop steps (the latency curve). */
  rates: number[];
  /**
   * The ingest as it was before a change (another checkout's
   * location-ingest/main.ts): its allocation run, closed loop and step at
   * GOAL_RATE join this run, so before and after are same-run figures.
   */
  baselineEntry?: string;
  /** Pings/s of the allocation run (heap bytes per ping), open loop. */
  allocationRate: number;
  /** Also load the peer (a stock @grpc/grpc-js server on Node). */
  peer: boolean;
  /**
   * Also the pinned steps: the ingest alone on core 0, Redis and the load
   * process on core 1 (as on a production ingest node, whose cores are its
   * own), at these pings/s. Needs taskset and two cores.
   */
  pinnedRates: number[];
  /**
   * The floor with Redis writes (floor-server.ts --redis) also loaded at
   * these of `rates` (the bare floor is loaded at every step).
   */
  floorRedisRates: number[];
  /** Seconds of load before each window (stream set-up stalls the first seconds); default 5. */
  warmupSeconds?: number;
  progress: (line: string) => void;
}

export interface ServerRuns {
  /** Open loop at the allocation rate, for the heap bytes per ping (the ingest with the GC timers off). */
  allocation: LoadRun;
  closedLoop: LoadRun;
  /** The same ingest over the Connect protocol (connect-node's adapter instead of the lean path). */
  closedLoopConnect?: LoadRun;
  curve: { rate: number; run: LoadRun }[];
  /** Open-loop steps with the ingest on a core of its own (IngestBenchOptions.pinnedRates). */
  pinned?: { rate: number; run: LoadRun }[];
}

/** The baseline ingest's runs (IngestBenchOptions.baselineEntry). */
export interface BaselineRuns {
  entry: string;
  allocation: LoadRun;
  closedLoop: LoadRun;
  atGoalRate: LoadRun;
}

export interface IngestBenchResult {
  options: Omit<IngestBenchOptions, "progress">;
  ingest: ServerRuns;
  /** The floor beside each of the ingest's open-loop steps. */
  floor: FloorStep[];
  baseline?: BaselineRuns;
  peer?: ServerRuns;
  raw: { pingsPerSecond: number; cpu: Record<string, number> };
  ratio: number;
}

const INGEST_ENTRY = join(import.meta.dir, "..", "..", "location-ingest", "main.ts");

/** The offered load of the tail goal (write p99 ≤ 10 ms at 20,000 pings/s). */
export const GOAL_RATE = 20_000;

/**
 * The floor's warm-up: it has no sessions to open, so its streams are up
 * within a second; a shorter warm-up keeps the floor's steps to about a
 * minute of the bench at its defaults.
 */
const FLOOR_WARMUP_SECONDS = 2;

/**
 * The ingest benchmark: a real ingest process on its own Redis, rider
 * streams from a separate load process (closed loop on the lean gRPC path
 * and on connect-node, then open-loop steps), in the same run the raw
 * ceiling (the same writes as bare pipelines) and the peer (a stock
 * @grpc/grpc-js server on Node making the same writes per ping), so every
 * result is a ratio taken within one run.
 */
export async function runIngestBench(options: IngestBenchOptions): Promise<IngestBenchResult> {
  const { streams, seconds, rates, allocationRate, baselineEntry, progress } = options;
  const { warmupSeconds = 5 } = options;
  const redis = await startRedis();
  const secret = randomBytes(32).toString("hex");
  const load = (
    server: ServerUnderTest,
    rate: number,
    protocol = "grpc",
    cpus?: string,
    warmup = warmupSeconds,
  ) =>
    runLoad({
      cpus,
      server,
      streams,
      seconds,
      warmupSeconds: warmup,
      rate,
      protocol,
      secret,
      redisPid: redis.pid,
    });
  const report = (label: string, run: LoadRun) =>
    progress(
      `  ${label}: ${Math.round(run.ackedPerSecond)} pings/s, ack p99 ${run.ackLatencyMs.p99.toFixed(1)} ms` +
        (run.writeLatencyMs ? `, write p99 ${run.writeLatencyMs.p99.toFixed(2)} ms` : "") +
        `, ${run.cpuMicrosPerPing.toFixed(1)} µs` +
        (run.heapBytesPerPing === undefined
          ? ""
          : ` and ${Math.round(run.heapBytesPerPing)} heap bytes`) +
        " per ping",
    );

  /** The heap bytes per ping: an open-loop run at the allocation rate. */
  async function allocationRun(server: ServerUnderTest): Promise<LoadRun> {
    progress(`${server.name}: open loop at ${allocationRate}/s for its allocation, ${seconds} s`);
    const run = await load(server, allocationRate);
    report("allocation", run);
    return run;
  }

  /**
   * `afterStep` runs after each open-loop step, at its rate: the floor's
   * steps, each beside the ingest's in time (the machine's load drifts).
   */
  async function runAll(
    server: ServerUnderTest,
    connect: boolean,
    allocation: LoadRun,
    afterStep: (rate: number) => Promise<void> = async () => undefined,
  ): Promise<ServerRuns> {
    progress(`${server.name}: ${streams} streams, closed loop, ${seconds} s`);
    const closedLoop = await load(server, 0);
    report("closed loop", closedLoop);
    let closedLoopConnect: LoadRun | undefined;
    if (connect) {
      closedLoopConnect = await load(server, 0, "connect");
      report("closed loop over Connect (connect-node)", closedLoopConnect);
    }
    const curve: ServerRuns["curve"] = [];
    for (const rate of rates) {
      const run = await load(server, rate);
      report(`open loop at ${rate}/s`, run);
      curve.push({ rate, run });
      await afterStep(rate);
    }
    return { allocation, closedLoop, ...(closedLoopConnect ? { closedLoopConnect } : {}), curve };
  }

  /** The ingest on core 0; Redis and the load process on core 1 for these steps only. */
  async function pinnedSteps(): Promise<{ rate: number; run: LoadRun }[]> {
    const server = await startIngest(INGEST_ENTRY, redis.url, secret, { gcTimer: true, cpus: "0" });
    moveToCpus(redis.pid, "1");
    const steps: { rate: number; run: LoadRun }[] = [];
    try {
      for (const rate of options.pinnedRates) {
        const run = await load(server, rate, "grpc", "1");
        report(`open loop at ${rate}/s, ingest on core 0, Redis and load on core 1`, run);
        steps.push({ rate, run });
      }
    } finally {
      moveToCpus(redis.pid, `0-${availableParallelism() - 1}`);
      await server.stop();
    }
    return steps;
  }

  try {
    // The GC timers off for the allocation run only (it changes when collections happen).
    const counting = await startIngest(INGEST_ENTRY, redis.url, secret, { gcTimer: false });
    const allocation = await allocationRun(counting).finally(() => counting.stop());
    const ingestServer = await startIngest(INGEST_ENTRY, redis.url, secret, { gcTimer: true });
    const floor = await startFloorSteps({
      redisUrl: redis.url,
      withRedisAt: options.floorRedisRates,
      load: (server, rate) =>
        load(server, rate, "grpc", undefined, Math.min(warmupSeconds, FLOOR_WARMUP_SECONDS)),
      report,
    }).catch(async (error: unknown) => {
      await ingestServer.stop();
      throw error;
    });
    const ingest = await runAll(ingestServer, true, allocation, floor.runAt).finally(() =>
      Promise.all([ingestServer.stop(), floor.stop()]),
    );
    if (options.pinnedRates.length > 0) ingest.pinned = await pinnedSteps();

    let baseline: BaselineRuns | undefined;
    if (baselineEntry) {
      const start = (gcTimer: boolean) =>
        startIngest(baselineEntry, redis.url, secret, { gcTimer, name: "baseline" });
      const before = await start(false);
      const allocation = await allocationRun(before).finally(() => before.stop());
      const server = await start(true);
      try {
        progress(`${server.name}: ${streams} streams, closed loop, ${seconds} s`);
        const closedLoop = await load(server, 0);
        report("closed loop", closedLoop);
        const atGoalRate = await load(server, GOAL_RATE);
        report(`open loop at ${GOAL_RATE}/s`, atGoalRate);
        baseline = { entry: baselineEntry, allocation, closedLoop, atGoalRate };
      } finally {
        await server.stop();
      }
    }

    progress(`raw ceiling: bare ioredis pipelines, ${seconds} s`);
    const raw = await rawCeiling(redis.url, redis.pid, seconds, streams);
    progress(`  ${Math.round(raw.pingsPerSecond)} pings/s`);

    let peer: ServerRuns | undefined;
    if (options.peer) {
      const peerServer = await startPeer(redis.url, secret);
      peer = await allocationRun(peerServer)
        .then((allocation) => runAll(peerServer, false, allocation))
        .finally(() => peerServer.stop());
    }
    return {
      options: {
        streams,
        seconds,
        rates,
        allocationRate,
        pinnedRates: options.pinnedRates,
        floorRedisRates: options.floorRedisRates,
        ...(baselineEntry ? { baselineEntry } : {}),
        peer: options.peer,
        warmupSeconds,
      },
      ingest,
      floor: floor.steps,
      ...(baseline ? { baseline } : {}),
      ...(peer ? { peer } : {}),
      raw,
      ratio: ingest.closedLoop.ackedPerSecond / raw.pingsPerSecond,
    };
  } finally {
    await redis.stop();
  }
}

async function rawCeiling(redisUrl: string, redisPid: number, seconds: number, riders: number) {
  const child = Bun.spawn(
    [
      process.execPath,
      join(import.meta.dir, "raw-redis-ceiling.ts"),
      ...["--redis", redisUrl, "--seconds", String(seconds), "--riders", String(riders)],
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  await Bun.sleep(1_000); // its own warm-up
  const meter = cpuMeter({ raw: child.pid, redis: redisPid });
  const out = await new Response(child.stdout).text();
  const cpu = meter.stop();
  return { pingsPerSecond: (JSON.parse(out) as { pingsPerSecond: number }).pingsPerSecond, cpu };
}
