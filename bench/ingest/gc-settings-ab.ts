// The ingest under settings that change how its runtime collects garbage,
// compared in alternating rounds of one run (the machine's load moves every
// variant alike): each --variant is a set of environment variables given to
// the ingest process at start (JavaScriptCore reads its BUN_JSC_* options only
// then), written `[label:] NAME=value NAME=value ...` as status-tail.ts takes
// them (bench/support/env-variant.ts), "as-is" for none (Bun's own settings).
// Per round, variant and rate: a fresh ingest on the run's redis-server, 2,000
// rider streams from the bench's load process, and its collections per second,
// pauses (mean per collection, the longest single stop), write p50 / p99, the
// share of writes over 10 ms, CPU µs per ping, heap bytes per ping (all of
// them only in a variant with the collection timers off, BUN_GC_TIMER_DISABLE=1
// BUN_JSC_collectionTimerMaxPercentCPU=0: gc-log.ts), minor page faults per
// ping (fresh heap pages) and resident memory at the window's end and at its peak;
// of its collections, the full ones, the bytes each marked (its work, whatever the
// machine's load) and the heap the window's last one left.
//   bun bench/ingest/gc-settings-ab.ts --variant as-is \
//     --variant 'heap256: BUN_JSC_largeHeapSize=268435456 BUN_JSC_collectionTimerMaxPercentCPU=0 BUN_GC_TIMER_DISABLE=1' \
//     --rates 10000,20000 [--rounds 2 --seconds 8 --pinned]
// With --baseline <another checkout's root> each variant runs on that
// checkout's ingest too (rows "baseline"), alternating with this one's: a
// same-run before/after of a change to the ingest's hot path. Given more than
// once (a bisection), each is run, its rows named by its commit.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startRedis } from "../../test/support/redis-server";
import { parseEnvVariant } from "../support/env-variant";
import { runLoad } from "./load-run";
import { moveToCpus, startIngest } from "./servers-under-test";

const { values: args } = parseArgs({
  options: {
    variant: { type: "string", multiple: true, default: ["as-is"] },
    rates: { type: "string", default: "10000,20000" },
    rounds: { type: "string", default: "2" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "5" },
    streams: { type: "string", default: "2000" },
    /** The ingest alone on core 0, Redis and the load process on core 1. */
    pinned: { type: "boolean", default: false },
    baseline: { type: "string", multiple: true },
  },
});
const entryOf = (root: string) => join(root, "location-ingest", "main.ts");
const baselines = args.baseline ?? [];
const commitOf = (root: string) =>
  Bun.spawnSync(["git", "-C", root, "rev-parse", "--short", "HEAD"]).stdout.toString().trim();
const ENTRIES: [string, string][] = [
  ...baselines.map((root): [string, string] => [
    baselines.length === 1 ? "baseline" : `baseline ${commitOf(root)}`,
    entryOf(root),
  ]),
  ["this", entryOf(join(import.meta.dir, "..", ".."))],
];

/** A process's resident memory now and at its peak (VmRSS, VmHWM), in MB. */
function memoryMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}
/** Minor page faults of a process so far (/proc/<pid>/stat field 10): fresh heap pages touched. */
function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}
const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

const variants = (args.variant ?? []).map(parseEnvVariant);
const rates = (args.rates ?? "").split(",").map(Number);
const seconds = Number(args.seconds);
const redis = await startRedis();
const secret = randomBytes(32).toString("hex");
const cpus = args.pinned ? { ingest: "0", rest: "1" } : undefined;
if (cpus) moveToCpus(redis.pid, cpus.rest);
console.log(
  "round | ingest | variant | rate | acked/s | collections/s (full) | marked MB per collection | heap after last MB | pause mean / longest stop ms | paused % | write p50 / p99 ms | writes > 10 ms | ingest µs/ping | heap bytes/ping | page faults/ping | RSS end / peak MB | load avg",
);
try {
  for (let round = 1; round <= Number(args.rounds); round += 1) {
    // Each round the other checkout first, so neither always meets the fresher machine.
    for (const [checkout, entry] of round % 2 === 0 ? ENTRIES.toReversed() : ENTRIES)
      for (const variant of variants) {
        const server = await startIngest(entry, redis.url, secret, {
          gcTimer: true,
          env: variant.env,
          ...(cpus ? { cpus: cpus.ingest } : {}),
        });
        try {
          for (const rate of rates) {
            const faultsBefore = minorFaults(server.pid);
            const run = await runLoad({
              cpus: cpus?.rest,
              server,
              streams: Number(args.streams),
              seconds,
              warmupSeconds: Number(args.warmup),
              rate,
              protocol: "grpc",
              secret,
              redisPid: redis.pid,
            });
            const { gc, writeLatencyMs: write } = run;
            // Over the warm-up and the window: the pings the open loop offered in both.
            const faultsPerPing =
              (minorFaults(server.pid) - faultsBefore) / (rate * (Number(args.warmup) + seconds));
            const memory = memoryMb(server.pid);
            const row = [
              round,
              checkout,
              variant.label,
              rate,
              Math.round(run.ackedPerSecond),
              `${(gc.collections / seconds).toFixed(1)} (${gc.fullCollections})`,
              (gc.markedMb / Math.max(1, gc.collections)).toFixed(2),
              gc.heapAfterMb.toFixed(1),
              `${(gc.pauseMs / Math.max(1, gc.collections)).toFixed(1)} / ${gc.maxPauseMs.toFixed(1)}`,
              ((100 * gc.pauseMs) / (seconds * 1000)).toFixed(1),
              `${write?.p50.toFixed(2)} / ${write?.p99.toFixed(2)}`,
              `${(100 * (write?.shareOver10Ms ?? Number.NaN)).toFixed(2)}%`,
              run.cpuMicrosPerPing.toFixed(1),
              // Every byte only when every collection is the heap's own (the timers off: gc-log.ts).
              (gc.allocatedBytes / (run.ackedPerSecond * seconds)).toFixed(0),
              faultsPerPing.toFixed(2),
              `${memory.rss.toFixed(0)} / ${memory.peak.toFixed(0)}`,
              loadAverage(),
            ].join(" | ");
            console.log(row);
          }
        } finally {
          await server.stop();
        }
      }
  }
} finally {
  if (cpus) moveToCpus(redis.pid, `0-${availableParallelism() - 1}`);
  await redis.stop();
}
