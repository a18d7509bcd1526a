import type { NamedChart } from "../support/chart-files";
import type { LoadRun } from "./load-run";
import {
  type BaselineRuns,
  GOAL_RATE,
  type IngestBenchResult,
  type ServerRuns,
} from "./run-ingest-bench";

const fmt = (n: number | undefined, digits = 0) =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : "n/a";
const cpu = (shares: Record<string, number>, server = "server") =>
  Object.entries(shares)
    .map(([name, share]) => `${name === "server" ? server : name} ${fmt(share * 100)}%`)
    .join(", ");
const drops = (run: LoadRun) =>
  Object.entries(run.dropped)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(", ") || "none";
const gcCell = (run: LoadRun) =>
  `${fmt(run.gc.pauseMs / run.gc.collections, 1)} ms × ${run.gc.collections} (max ${fmt(run.gc.maxPauseMs, 1)})`;

function row(label: string, run: LoadRun, server: string): string {
  const write = run.writeLatencyMs
    ? `${fmt(run.writeLatencyMs.p50, 2)} / ${fmt(run.writeLatencyMs.p99, 2)}`
    : "—";
  const heap = run.heapBytesPerPing === undefined ? "—" : fmt(run.heapBytesPerPing);
  return `| ${label} | ${fmt(run.ackedPerSecond)} | ${write} | ${fmt(run.ackLatencyMs.p50, 2)} / ${fmt(run.ackLatencyMs.p99, 2)} | ${fmt(run.cpuMicrosPerPing, 1)} | ${heap} | ${gcCell(run)} | ${cpu(run.cpu, server)} | ${drops(run)}${run.behind > 0 ? `; ${run.behind} sends skipped (8 acks behind)` : ""} |`;
}

const HEADER = `| run | acked pings/s | write p50 / p99 ms | ack p50 / p99 ms | server CPU µs per ping | server heap bytes per ping | GC pauses (mean × count, max) | CPU (share of one core) | drops |
|---|---:|---:|---:|---:|---:|---|---|---|`;

function table(runs: ServerRuns, server: string, allocationLabel: string): string {
  const rows = [row("closed loop", runs.closedLoop, server)];
  if (runs.closedLoopConnect)
    rows.push(row("closed loop, Connect protocol (connect-node)", runs.closedLoopConnect, server));
  for (const { rate, run } of runs.curve) rows.push(row(`open loop at ${rate}/s`, run, server));
  for (const { rate, run } of runs.pinned ?? [])
    rows.push(
      row(`open loop at ${rate}/s, ingest alone on core 0 (Redis, load on core 1)`, run, server),
    );
  rows.push(row(allocationLabel, runs.allocation, server));
  return [HEADER, ...rows].join("\n");
}

/**
 * The floor beside the ingest, step by step: what the machine, the load
 * process and node:http2 under Bun give a server that does almost nothing
 * (and one that also writes to Redis), and the ingest's ack p99 above it.
 */
function floorPart(result: IngestBenchResult): string {
  const { ingest, floor } = result;
  if (floor.length === 0) return "";
  const pair = (run: LoadRun | undefined) =>
    run ? `${fmt(run.ackLatencyMs.p50, 2)} / ${fmt(run.ackLatencyMs.p99, 2)}` : "—";
  const rows = floor.map(({ rate, run, withRedis }) => {
    const own = ingest.curve.find((step) => step.rate === rate)?.run;
    const gap = (under: LoadRun | undefined) =>
      own && under ? fmt(own.ackLatencyMs.p99 - under.ackLatencyMs.p99, 2) : "—";
    return `| ${rate} | ${fmt(own?.ackedPerSecond)} | ${pair(own)} | ${fmt(run.ackedPerSecond)} | ${pair(run)} | ${gap(run)} | ${withRedis ? fmt(withRedis.ackedPerSecond) : "—"} | ${pair(withRedis)} | ${gap(withRedis)} | ${fmt(run.cpuMicrosPerPing, 1)}${withRedis ? ` ; ${fmt(withRedis.cpuMicrosPerPing, 1)}` : ""} | ${gcCell(run)}${withRedis ? ` ; ${gcCell(withRedis)}` : ""} |`;
  });
  return `
**The floor**, same run, same load process, each step loaded right after the ingest's at the same
rate (a 2 s warm-up): \`bench/ingest/floor-server.ts\`, a bare StreamPings server with the ingest's
wire (h2c on node:http2 under Bun, gRPC framing, the generated types through protobuf-es) that
decodes each ping and acks it at once: no token check, session, checks or Redis. "+ Redis": the
same, each ping written first through bare ioredis pipelines (the raw ceiling's four commands per
ping; up to 256 pings a pipeline and 4 in flight, the ingest writer's defaults), acked when its
pipeline is back. The floor's ack p99 is what this machine and this
load process give a server that does almost nothing, at that moment; the gap is the ingest's own.

| pings/s offered | ingest acked/s | ingest ack p50 / p99 ms | floor acked/s | floor ack p50 / p99 ms | ack p99 gap, ingest − floor ms | floor + Redis acked/s | floor + Redis ack p50 / p99 ms | ack p99 gap, ingest − floor + Redis ms | floor CPU µs per ping (; + Redis) | floor GC pauses (; + Redis) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${rows.join("\n")}
`;
}

/** Before/after: the baseline ingest against this checkout's, same run. */
function baselinePart(baseline: BaselineRuns, ingest: ServerRuns): string {
  const afterAtGoal = ingest.curve.find((step) => step.rate === GOAL_RATE)?.run;
  const cells = (closed: LoadRun, atGoal: LoadRun | undefined, allocation: LoadRun) =>
    [
      fmt(closed.ackedPerSecond),
      fmt(closed.ackLatencyMs.p99, 1),
      fmt(closed.cpuMicrosPerPing, 1),
      atGoal?.writeLatencyMs ? fmt(atGoal.writeLatencyMs.p99, 2) : "n/a",
      atGoal ? fmt(atGoal.cpuMicrosPerPing, 1) : "n/a",
      fmt(allocation.heapBytesPerPing),
    ].join(" | ");
  const before = cells(baseline.closedLoop, baseline.atGoalRate, baseline.allocation);
  const after = cells(ingest.closedLoop, afterAtGoal, ingest.allocation);
  const ratio = (pick: (runs: { closed: LoadRun; allocation: LoadRun }) => number | undefined) => {
    const a = pick({ closed: ingest.closedLoop, allocation: ingest.allocation });
    const b = pick({ closed: baseline.closedLoop, allocation: baseline.allocation });
    return a !== undefined && b !== undefined ? `${fmt(a / b, 2)}×` : "n/a";
  };
  return `
**Before / after**, same run: the baseline is \`${baseline.entry}\` (the checkout given
as \`--baseline-entry\`), loaded exactly as above.

| ingest | closed loop pings/s | closed loop ack p99 ms | closed loop CPU µs per ping | write p99 ms at ${GOAL_RATE}/s | CPU µs per ping at ${GOAL_RATE}/s | heap bytes per ping (allocation run) |
|---|---:|---:|---:|---:|---:|---:|
| before | ${before} |
| after | ${after} |

After / before: ${ratio(({ closed }) => closed.ackedPerSecond)} the closed-loop throughput, ${ratio(({ closed }) => closed.cpuMicrosPerPing)} the CPU per ping, ${ratio(({ allocation }) => allocation.heapBytesPerPing)} the heap bytes per ping.
`;
}

/** The issue's goals, each against its same-run figure. */
function goalsPart(result: IngestBenchResult): string {
  const { ingest, peer, ratio } = result;
  const atGoal = ingest.curve.find((step) => step.rate === GOAL_RATE)?.run;
  const met = (ok: boolean) => (ok ? "met" : "not met");
  const lines = [
    `- closed loop ≥ 80% of the raw pipelined ceiling: ${fmt(ratio * 100)}% (${met(ratio >= 0.8)})`,
  ];
  if (atGoal?.writeLatencyMs) {
    const p99 = atGoal.writeLatencyMs.p99;
    const kept = atGoal.ackedPerSecond >= 0.95 * GOAL_RATE;
    const floor = result.floor.find((step) => step.rate === GOAL_RATE);
    const beside = floor
      ? `; same step, ack p99: the ingest ${fmt(atGoal.ackLatencyMs.p99, 2)} ms, the floor ${fmt(floor.run.ackLatencyMs.p99, 2)} ms${floor.withRedis ? `, the floor + Redis ${fmt(floor.withRedis.ackLatencyMs.p99, 2)} ms` : ""}`
      : "";
    lines.push(
      `- write p99 ≤ 10 ms at ${GOAL_RATE} pings/s: ${fmt(p99, 2)} ms at ${fmt(atGoal.ackedPerSecond)} acked/s (${met(p99 <= 10 && kept)})${beside}`,
    );
  }
  if (peer) {
    const times = ingest.closedLoop.ackedPerSecond / peer.closedLoop.ackedPerSecond;
    const p99Ok = ingest.closedLoop.ackLatencyMs.p99 <= peer.closedLoop.ackLatencyMs.p99;
    lines.push(
      `- ≥ 2× the peer's closed-loop throughput at equal or better ack p99: ${fmt(times, 2)}× (${met(times >= 2 && p99Ok)})`,
    );
  }
  return `\nGoals (issue 11), same run:\n\n${lines.join("\n")}\n`;
}

/** The Ingest section of bench/RESULTS.md. */
export function ingestReport(result: IngestBenchResult, command: string, machine: string): string {
  const { ingest, peer, baseline, raw, ratio, options } = result;
  const lean = ingest.closedLoop;
  const adapter = ingest.closedLoopConnect;
  const peerPart = peer
    ? `
**The peer**, same run, same load process: a stock \`@grpc/grpc-js\` server on Node
(\`bench/ingest/peer-grpc-js-server.mjs\`, what a team writes first) making the same Redis writes
per ping through ioredis, one pipeline per ping, after the same kind of checks (its log record is
JSON: the stock tools have no LocationRecord encoder). Its GC figures come from V8's \`--trace-gc\`.

${table(peer, "peer", `open loop at ${options.allocationRate}/s, allocation counted`)}

Closed loop, ingest / peer: **${fmt(lean.ackedPerSecond / peer.closedLoop.ackedPerSecond, 2)}×** the throughput, ack p99
${fmt(lean.ackLatencyMs.p99, 1)} ms against ${fmt(peer.closedLoop.ackLatencyMs.p99, 1)} ms; ${fmt(lean.cpuMicrosPerPing, 1)} against ${fmt(peer.closedLoop.cpuMicrosPerPing, 1)} µs of server CPU per ping.
`
    : "";
  return `
Command: \`${command}\` — machine: ${machine}.

${options.streams} rider streams from a separate load process (hand-framed gRPC over h2c; with
"Connect protocol" the same streams as \`application/connect+proto\`, which connect-node serves
instead of the lean path), against one ingest process on its own redis-server; ${options.seconds} s measured
after a warm-up. Write latency is the ingest's own \`edge_ingest_write_latency_seconds\` (ping
received → its Redis pipeline done, interpolated inside histogram buckets); ack latency is what the
load process saw (ping sent → ack). Server CPU per ping is the server process's CPU time over the
acked pings. Heap bytes per ping are what the runtime reported allocating over the window, over the
acked pings: for the ingest JavaScriptCore's GC log (\`BUN_JSC_logGC=1\`, "bytes allocated this
cycle"), which counts every byte only when each collection is one the heap asked for, so it is
counted in a run of its own with the timer-driven collections off (\`BUN_GC_TIMER_DISABLE=1
BUN_JSC_collectionTimerMaxPercentCPU=0\`: Bun's timer and JavaScriptCore's Eden and Full timers;
the other rows run as deployed). GC pauses are each run's own (JavaScriptCore's pause increments).
The open-loop steps are the latency curve; a step whose acked rate falls short of its target is
past the knee.

${table(ingest, "ingest", `open loop at ${options.allocationRate}/s, GC timers off (allocation)`)}
${floorPart(result)}
Raw ceiling, same run: the ingest's Redis writes per ping (GEOADD, ZADD, store-rider-positions.lua,
XADD) as bare ioredis pipelines of 512 pings from one process: **${fmt(raw.pingsPerSecond)} pings/s** (${cpu(raw.cpu)}).

**Ingest / raw ceiling: ${fmt(ratio * 100)}%.**${
    adapter
      ? ` The lean gRPC path against connect-node's adapter on the same ingest: ${fmt(lean.cpuMicrosPerPing, 1)} against ${fmt(adapter.cpuMicrosPerPing, 1)} µs of CPU per ping (${fmt(adapter.cpuMicrosPerPing / lean.cpuMicrosPerPing, 1)}×), ${fmt(lean.ackedPerSecond)} against ${fmt(adapter.ackedPerSecond)} pings/s.`
      : ""
  }
${peerPart}${baseline ? baselinePart(baseline, ingest) : ""}${goalsPart(result)}`;
}

/**
 * The ingest's charts: the latency curve (ack p50/p99 and write p99 against
 * offered load, the floor's and the peer's ack p99 beside), and pings/s of the closed loop
 * against the raw ceiling, connect-node's adapter and the peer.
 */
export function ingestCharts(result: IngestBenchResult): NamedChart[] {
  const curve = (
    steps: readonly { rate: number; run: LoadRun | undefined }[],
    name: string,
    pick: (run: LoadRun) => number | undefined,
  ) => ({
    name,
    points: steps.flatMap(({ rate, run }) => {
      if (!run) return [];
      const y = pick(run);
      return y === undefined
        ? []
        : [{ x: rate, y: Math.max(y, 0.01), note: `${fmt(run.ackedPerSecond)} accepted/s` }];
    }),
  });
  const { ingest, peer, raw, floor } = result;
  const bars = [
    { name: "ingest, lean gRPC path", value: ingest.closedLoop.ackedPerSecond },
    ...(ingest.closedLoopConnect
      ? [{ name: "ingest, connect-node", value: ingest.closedLoopConnect.ackedPerSecond }]
      : []),
    ...(peer ? [{ name: "peer (grpc-js on Node)", value: peer.closedLoop.ackedPerSecond }] : []),
    { name: "raw pipelines", value: raw.pingsPerSecond },
  ];
  return [
    {
      name: "ingest-latency",
      kind: "line",
      title: "Ingest: latency against offered load (open loop)",
      x: { label: "offered pings/s" },
      y: { label: "latency (ms, log scale)", log: true },
      series: [
        curve(ingest.curve, "ack p99", (run) => run.ackLatencyMs.p99),
        curve(ingest.curve, "ack p50", (run) => run.ackLatencyMs.p50),
        curve(ingest.curve, "write p99", (run) => run.writeLatencyMs?.p99),
        ...(floor.length > 0
          ? [{ ...curve(floor, "floor ack p99", (run) => run.ackLatencyMs.p99), dashed: true }]
          : []),
        ...(floor.some((step) => step.withRedis)
          ? [
              {
                ...curve(
                  floor.map(({ rate, withRedis }) => ({ rate, run: withRedis })),
                  "floor + Redis ack p99",
                  (run) => run.ackLatencyMs.p99,
                ),
                dashed: true,
              },
            ]
          : []),
        ...(peer
          ? [{ ...curve(peer.curve, "peer ack p99", (run) => run.ackLatencyMs.p99), dashed: true }]
          : []),
      ],
    },
    {
      name: "ingest-throughput",
      kind: "bar",
      title: "Ingest: accepted pings/s, closed loop, against its baselines",
      y: { label: "pings/s" },
      groups: [{ label: "same run", bars }],
    },
  ];
}
