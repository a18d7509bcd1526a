import type { NamedChart } from "../support/chart-files";
import type { IngestBenchResult, LoadRun } from "./run-ingest-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const cpu = (shares: Record<string, number>) =>
  Object.entries(shares)
    .map(([name, share]) => `${name} ${fmt(share * 100)}%`)
    .join(", ");

function row(label: string, run: LoadRun): string {
  const drops = Object.entries(run.dropped)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(", ");
  return `| ${label} | ${fmt(run.ackedPerSecond)} | ${fmt(run.writeLatencyMs.p50, 2)} / ${fmt(run.writeLatencyMs.p99, 2)} | ${fmt(run.ackLatencyMs.p50, 2)} / ${fmt(run.ackLatencyMs.p99, 2)} | ${cpu(run.cpu)} | ${drops || "none"} |`;
}

/** The Ingest section of bench/RESULTS.md. */
export function ingestReport(result: IngestBenchResult, command: string, machine: string): string {
  const { throughput, latency, raw, ratio, options } = result;
  return `
Command: \`${command}\` — machine: ${machine}.

${options.streams} rider streams from a separate load process (hand-framed gRPC over h2c), against one
ingest process on its own redis-server; ${options.seconds} s measured after a warm-up. Write latency is
the ingest's own \`edge_ingest_write_latency_seconds\` (ping received → its Redis pipeline done,
interpolated inside histogram buckets); ack latency is what the load process saw (ping sent → ack).

| run | accepted pings/s | write p50 / p99 ms | ack p50 / p99 ms | CPU (share of one core) | drops |
|---|---:|---:|---:|---|---|
${row("closed loop (max throughput)", throughput)}
${row(`open loop at ${options.latencyRate}/s`, latency)}

Raw ceiling, same run: the same writes per ping (GEOADD, ZADD, SET … EX, XADD) as bare ioredis
pipelines of 512 pings from one process: **${fmt(raw.pingsPerSecond)} pings/s** (${cpu(raw.cpu)}).

**Ingest / raw ceiling: ${fmt(ratio * 100)}%.**
`;
}

/**
 * The ingest's charts: ack latency against offered load (each open-loop
 * rate, and the closed loop at the rate it reached), and pings/s against the
 * raw ceiling. A part that measures more rates (or a peer) adds their points
 * and bars here.
 */
export function ingestCharts(result: IngestBenchResult): NamedChart[] {
  const runs = [
    { offered: result.options.latencyRate, run: result.latency, note: "open loop" },
    { offered: result.throughput.ackedPerSecond, run: result.throughput, note: "closed loop" },
  ];
  const series = (name: string, pick: (run: LoadRun) => number) => ({
    name,
    points: runs.map(({ offered, run, note }) => ({
      x: offered,
      y: Math.max(pick(run), 0.01),
      note: `${note}, ${fmt(run.ackedPerSecond)} accepted/s`,
    })),
  });
  return [
    {
      name: "ingest-latency",
      kind: "line",
      title: "Ingest: latency against offered load",
      x: { label: "offered pings/s (closed loop: what it reached)" },
      y: { label: "latency (ms, log scale)", log: true },
      series: [
        series("ack p99", (run) => run.ackLatencyMs.p99),
        series("ack p50", (run) => run.ackLatencyMs.p50),
        series("write p99", (run) => run.writeLatencyMs.p99),
      ],
    },
    {
      name: "ingest-throughput",
      kind: "bar",
      title: "Ingest: accepted pings/s against the raw Redis ceiling",
      y: { label: "pings/s" },
      groups: [
        {
          label: "same run",
          bars: [
            { name: "ingest (closed loop)", value: result.throughput.ackedPerSecond },
            { name: "raw pipelines", value: result.raw.pingsPerSecond },
          ],
        },
      ],
    },
  ];
}
