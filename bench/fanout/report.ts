import type { NamedChart } from "../support/chart-files";
import type { FanoutBenchResult, FanoutRun } from "./run-fanout-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const cpu = (shares: Record<string, number>) =>
  Object.entries(shares)
    .map(([name, share]) => `${name} ${fmt(share * 100)}%`)
    .join(", ");

function row(label: string, run: FanoutRun): string {
  const { p50, p99, p999 } = run.lagMs;
  return `| ${label} | ${fmt(run.framesPerSecond)} | ${fmt(p50)} / ${fmt(p99)} / ${fmt(p999)} | ${run.closedEarly} | ${cpu(run.cpu)} |`;
}

/** The Fan-out section of bench/RESULTS.md. */
export function fanoutReport(result: FanoutBenchResult, command: string, machine: string): string {
  const { options, latency, throughput, raw, ratio, bytesPerSocket } = result;
  const sockets = options.orders * options.perOrder;
  return `
Command: \`${command}\` — machine: ${machine}.

${options.orders} orders × ${options.perOrder} watchers = ${sockets} WebSockets on one tracking node, from a
separate watcher process; riders stream pings for those orders through a real ingest (separate
process). Lag is ping received by the ingest → frame received by the watcher (ms, 1 ms clock
resolution). ${options.seconds} s measured after a warm-up.

| run | frames/s delivered | lag p50 / p99 / p999 ms | sockets lost | CPU (share of one core) |
|---|---:|---:|---:|---|
${row(`riders at ${options.rate} pings/s`, latency)}
${row("riders as fast as acked", throughput)}
${row("raw ceiling: bare Bun.serve sending the same frames", raw)}

Tracking node memory per idle socket: **${fmt(bytesPerSocket / 1024, 1)} KiB** (RSS growth while the ${sockets}
sockets connected, divided by ${sockets}).

**Delivered / raw ceiling (both as fast as they go): ${fmt(ratio * 100)}%.**
`;
}

/**
 * The fan-out's charts: frames/s of the node against the raw ceiling (and,
 * when the part measures one, a peer such as Socket.IO: add its bar here).
 */
export function fanoutCharts(result: FanoutBenchResult): NamedChart[] {
  return [
    {
      name: "fanout-frames",
      kind: "bar",
      title: `Fan-out: frames/s delivered to ${result.options.orders * result.options.perOrder} sockets`,
      y: { label: "frames/s delivered" },
      groups: [
        {
          label: "as fast as it goes, same run",
          bars: [
            { name: "tracking node", value: result.throughput.framesPerSecond },
            { name: "raw Bun.serve", value: result.raw.framesPerSecond },
          ],
        },
        {
          label: `riders at ${result.options.rate} pings/s`,
          bars: [{ name: "tracking node", value: result.latency.framesPerSecond }],
        },
      ],
    },
  ];
}
