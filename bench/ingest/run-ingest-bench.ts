import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { freePort, startRedis } from "../../test/support/redis-server";
import { waitForOk } from "../support/child";
import { histogramPercentile, parseHistogram } from "../support/percentiles";
import { cpuMeter } from "../support/process-stats";

export interface IngestBenchOptions {
  streams: number;
  seconds: number;
  /** Pings/s for the open-loop latency run. */
  latencyRate: number;
  progress: (line: string) => void;
}

interface LoadResult {
  mode: string;
  ackedPerSecond: number;
  dropped: Record<string, number>;
  behind: number;
  ackLatencyMs: { p50: number; p99: number; p999: number };
  cpuCores: number;
  errors: string[];
}

export interface LoadRun extends LoadResult {
  /** Receipt → Redis pipeline done, from the ingest's own histogram (ms). */
  writeLatencyMs: { p50: number; p99: number };
  cpu: Record<string, number>;
}

export interface IngestBenchResult {
  options: Omit<IngestBenchOptions, "progress">;
  throughput: LoadRun;
  latency: LoadRun;
  raw: { pingsPerSecond: number; cpu: Record<string, number> };
  ratio: number;
}

const ROOT = join(import.meta.dir, "..", "..");
// Stream set-up (2,000 token checks and Redis reads) stalls the first seconds; keep it out of the window.
const WARMUP_S = 5;

/**
 * The ingest benchmark: a real ingest process on its own Redis, rider
 * streams from a separate load process, and in the same run the raw ceiling
 * (the same writes as bare pipelines), so the result is a ratio.
 */
export async function runIngestBench(options: IngestBenchOptions): Promise<IngestBenchResult> {
  const { streams, seconds, latencyRate, progress } = options;
  const redis = await startRedis();
  const secret = randomBytes(32).toString("hex");
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const ingest = Bun.spawn([process.execPath, join(ROOT, "location-ingest", "main.ts")], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      JWT_SECRET: secret,
      INGEST_PORT: String(grpcPort),
      INGEST_HTTP_PORT: String(httpPort),
      // The load process carries 100 riders per connection (a phone holds one).
      INGEST_MAX_STREAMS_PER_CONNECTION: "100",
      LOG_LEVEL: "warn",
    },
    stdout: "inherit",
    stderr: "inherit",
  });
  try {
    await waitForOk(`http://127.0.0.1:${httpPort}/readyz`);
    const pids = { ingest: ingest.pid, redis: redis.pid };
    const load = (rate: number) =>
      runLoad({
        url: `http://127.0.0.1:${grpcPort}`,
        streams,
        seconds,
        rate,
        secret,
        metricsUrl: `http://127.0.0.1:${httpPort}/metrics`,
        pids,
      });

    progress(`ingest: ${streams} streams, closed loop, ${seconds} s`);
    const throughput = await load(0);
    progress(
      `  ${Math.round(throughput.ackedPerSecond)} pings/s, write p99 ${throughput.writeLatencyMs.p99.toFixed(2)} ms`,
    );
    progress(`ingest: ${streams} streams, open loop at ${latencyRate} pings/s, ${seconds} s`);
    const latency = await load(latencyRate);
    progress(
      `  ${Math.round(latency.ackedPerSecond)} pings/s, write p99 ${latency.writeLatencyMs.p99.toFixed(2)} ms`,
    );
    ingest.kill("SIGTERM");
    await ingest.exited;

    progress(`raw ceiling: bare ioredis pipelines, ${seconds} s`);
    const rawProcess = Bun.spawn(
      [
        process.execPath,
        join(import.meta.dir, "raw-redis-ceiling.ts"),
        "--redis",
        redis.url,
        "--seconds",
        String(seconds),
        "--riders",
        String(streams),
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    await Bun.sleep(1_000); // its own warm-up
    const meter = cpuMeter({ raw: rawProcess.pid, redis: redis.pid });
    const rawOut = await new Response(rawProcess.stdout).text();
    const rawCpu = meter.stop();
    const raw = {
      pingsPerSecond: (JSON.parse(rawOut) as { pingsPerSecond: number }).pingsPerSecond,
      cpu: rawCpu,
    };
    progress(`  ${Math.round(raw.pingsPerSecond)} pings/s`);
    return {
      options: { streams, seconds, latencyRate },
      throughput,
      latency,
      raw,
      ratio: throughput.ackedPerSecond / raw.pingsPerSecond,
    };
  } finally {
    ingest.kill("SIGKILL");
    await redis.stop();
  }
}

async function runLoad(options: {
  url: string;
  streams: number;
  seconds: number;
  rate: number;
  secret: string;
  metricsUrl: string;
  pids: Record<string, number>;
}): Promise<LoadRun> {
  const { url, streams, seconds, rate, secret, metricsUrl, pids } = options;
  const load = Bun.spawn(
    [
      process.execPath,
      join(import.meta.dir, "load-riders.ts"),
      ...["--url", url, "--streams", String(streams), "--seconds", String(seconds)],
      ...["--warmup", String(WARMUP_S), "--rate", String(rate), "--secret", secret],
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  const output = new Response(load.stdout).text();
  await Bun.sleep(WARMUP_S * 1000);
  const before = parseHistogram(
    await (await fetch(metricsUrl)).text(),
    "edge_ingest_write_latency_seconds",
  );
  const meter = cpuMeter({ ...pids, load: load.pid });
  await Bun.sleep(seconds * 1000);
  const cpu = meter.stop();
  const after = parseHistogram(
    await (await fetch(metricsUrl)).text(),
    "edge_ingest_write_latency_seconds",
  );
  const result = JSON.parse((await output).trim().split("\n").at(-1) ?? "{}") as LoadResult;
  return {
    ...result,
    cpu,
    writeLatencyMs: {
      p50: histogramPercentile(before, after, 50) * 1000,
      p99: histogramPercentile(before, after, 99) * 1000,
    },
  };
}
