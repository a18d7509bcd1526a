import { join } from "node:path";
import { histogramPercentile, parseHistogram } from "../support/percentiles";
import { cpuMeter } from "../support/process-stats";
import type { GcSnapshot } from "./gc-log";
import { onCpus, type ServerUnderTest } from "./servers-under-test";

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
  /**
   * Receipt → Redis pipeline done, from the ingest's own histogram (ms), and
   * the share of writes that took longer than the tail goal's 10 ms; none for
   * the peer.
   */
  writeLatencyMs?: { p50: number; p99: number; shareOver10Ms: number };
  cpu: Record<string, number>;
  /** The server's CPU time per acked ping (µs). */
  cpuMicrosPerPing: number;
  gc: GcSnapshot;
  /** Heap bytes the server allocated per acked ping, where its GC log counts every byte (gc-log.ts). */
  heapBytesPerPing?: number;
}

/** One load process against `server` for a warm-up and a measured window (`rate` 0: closed loop). */
export async function runLoad(options: {
  /** Cores the load process runs on (taskset), or any. */
  cpus: string | undefined;
  server: ServerUnderTest;
  streams: number;
  seconds: number;
  warmupSeconds: number;
  rate: number;
  protocol: string;
  secret: string;
  redisPid: number;
}): Promise<LoadRun> {
  const { server, streams, seconds, warmupSeconds, rate, protocol, secret, redisPid } = options;
  const child = Bun.spawn(
    onCpus(options.cpus, [
      process.execPath,
      join(import.meta.dir, "load-riders.ts"),
      ...["--url", server.url, "--streams", String(streams), "--seconds", String(seconds)],
      ...["--warmup", String(warmupSeconds), "--rate", String(rate), "--secret", secret],
      ...["--protocol", protocol],
    ]),
    // stdin: the child waits for its end before exiting, so its CPU time can be read however late.
    { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
  );
  const output = new Response(child.stdout).text();
  await Bun.sleep(warmupSeconds * 1000);
  const histogram = async () =>
    server.metricsUrl
      ? parseHistogram(
          await (await fetch(server.metricsUrl)).text(),
          "edge_ingest_write_latency_seconds",
        )
      : undefined;
  const before = await histogram();
  const meter = cpuMeter({ server: server.pid, redis: redisPid, load: child.pid });
  const gcWindow = server.gc.open();
  const startedAt = performance.now();
  await Bun.sleep(seconds * 1000);
  const elapsed = (performance.now() - startedAt) / 1000;
  const cpu = meter.stop();
  child.stdin.end();
  const gc = gcWindow.close();
  const after = await histogram();
  const result = JSON.parse((await output).trim().split("\n").at(-1) ?? "{}") as LoadResult;
  const acked = result.ackedPerSecond * elapsed;
  return {
    ...result,
    cpu,
    cpuMicrosPerPing: ((cpu.server ?? 0) * 1e6) / result.ackedPerSecond,
    gc,
    ...(server.countsAllocation ? { heapBytesPerPing: gc.allocatedBytes / acked } : {}),
    ...(before && after
      ? {
          writeLatencyMs: {
            p50: histogramPercentile(before, after, 50) * 1000,
            p99: histogramPercentile(before, after, 99) * 1000,
            shareOver10Ms: shareAbove(before, after, 0.01),
          },
        }
      : {}),
  };
}

/** The share of a histogram's observations between two scrapes above `bound` (one of its buckets). */
function shareAbove(
  before: Map<number, number>,
  after: Map<number, number>,
  bound: number,
): number {
  const delta = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const total = delta(Number.POSITIVE_INFINITY);
  return total > 0 ? 1 - delta(bound) / total : Number.NaN;
}
