import type { NamedChart } from "../support/chart-files";
import {
  type FanoutBenchResult,
  type FanoutRun,
  type LoadPoint,
  SERVERS,
  type ServerName,
} from "./run-fanout-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const cpu = (shares: Record<string, number>) =>
  Object.entries(shares)
    .map(([name, share]) => `${name} ${fmt(share * 100)}%`)
    .join(", ");

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function row(run: FanoutRun): string {
  const { p50, p99, p999 } = run.lagMs;
  const conflated = run.conflatedPerSecond === undefined ? "" : fmt(run.conflatedPerSecond);
  return `| ${SERVERS[run.server]} | ${run.round} | ${fmt(run.eventsPerSecond)} | ${fmt(run.framesPerSecond)} | ${fmt(p50)} / ${fmt(p99)} / ${fmt(p999)} | ${fmt(run.serverMicrosPerFrame, 2)} | ${conflated} | ${run.closedEarly} | ${cpu(run.cpu)} |`;
}

function table(runs: FanoutRun[]): string {
  return [
    "| server | round | events/s into Redis | frames/s delivered | lag p50 / p99 / p999 ms | server CPU µs per frame | positions/s conflated | sockets lost | CPU (share of one core) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ...runs.map(row),
  ].join("\n");
}

/** Node figure ÷ other server's figure, per round (same run), and their median. */
export function ratios(
  runs: FanoutRun[],
  load: LoadPoint,
  other: ServerName,
  figure: (run: FanoutRun) => number,
): { perRound: number[]; median: number } {
  const perRound: number[] = [];
  for (const node of runs.filter((run) => run.server === "node" && run.load === load)) {
    const peer = runs.find(
      (run) => run.server === other && run.load === load && run.round === node.round,
    );
    if (peer) perRound.push(figure(node) / figure(peer));
  }
  return { perRound, median: median(perRound) };
}

function ratioLine(
  label: string,
  value: { perRound: number[]; median: number },
  asPercent: boolean,
): string {
  const show = (n: number) => (asPercent ? `${fmt(n * 100)}%` : `${fmt(n, 2)}×`);
  return `- ${label}: **${show(value.median)}** (rounds: ${value.perRound.map(show).join(", ")})`;
}

/** The Fan-out section of bench/RESULTS.md. */
export function fanoutReport(result: FanoutBenchResult, command: string, machine: string): string {
  const { options, runs, bytesPerSocket } = result;
  const sockets = options.orders * options.perOrder;
  const at = (load: LoadPoint) => runs.filter((run) => run.load === load);
  const fps = (run: FanoutRun) => run.framesPerSecond;
  const micros = (run: FanoutRun) => run.serverMicrosPerFrame;
  const p99 = (run: FanoutRun) => run.lagMs.p99;
  const nodeP99 = median(
    at("rate")
      .filter((run) => run.server === "node")
      .map(p99),
  );
  return `
Command: \`${command}\` — machine: ${machine}.

${options.orders} orders × ${options.perOrder} watchers = ${sockets} WebSockets held by one watcher process,
against one server at a time. Events (rider positions as TrackingEvent JSON) are published straight
into Redis by a publisher process of their own, round robin over the orders, stamped at publication:
lag is publish → frame received by the watcher (ms, 1 ms clock resolution). Every server gets the
same events for the same sockets: the tracking node and the raw forwarders subscribe to each order's
\`track:{p<n>}:<o>\` channel (ioredis); Socket.IO gets them through its Redis adapter from
\`@socket.io/redis-emitter\` (a room per order), and its sockets are read by the same watcher process
speaking Engine.IO v4/Socket.IO packets by hand over the same WebSocket client, so the client side
costs the same per frame. Servers take turns (the order reversed every other round), ${options.rounds} round(s); ${options.seconds} s measured
after a ${options.warmupSeconds} s warm-up at each load point. Server CPU per frame = the server process's CPU time in
the window ÷ frames the watchers received in it. Positions conflated (the tracking node only):
positions it replaced by a newer one for a socket over \`TRACKING_CONFLATE_ABOVE_BYTES\` unsent,
never sent (from its /metrics).

**At ${options.rate} events/s** (${options.rate * options.perOrder} frames/s offered):

${table(at("rate"))}

**Offered ${options.maxRate} events/s** (more than the machine delivers: frames/s is each server's
throughput with the publisher, Redis and the watchers on the same two cores; lag is then queueing):

${table(at("max"))}

Same-run ratios, tracking node ÷ the other server (median of rounds):

${ratioLine("frames/s at the throughput point, node ÷ raw per-socket send", ratios(runs, "max", "rawSend", fps), true)}
${ratioLine("frames/s at the throughput point, node ÷ raw server.publish", ratios(runs, "max", "rawPublish", fps), true)}
${ratioLine(`CPU µs per frame at ${options.rate} events/s, node ÷ raw per-socket send`, ratios(runs, "rate", "rawSend", micros), false)}
${ratioLine(`CPU µs per frame at ${options.rate} events/s, node ÷ raw server.publish`, ratios(runs, "rate", "rawPublish", micros), false)}
${ratioLine("CPU µs per frame at the throughput point, node ÷ raw per-socket send", ratios(runs, "max", "rawSend", micros), false)}
${ratioLine("frames/s at the throughput point, node ÷ Socket.IO", ratios(runs, "max", "peer", fps), false)}
${ratioLine(
  `lag p99 at ${options.rate} events/s, Socket.IO ÷ node`,
  ratios(runs, "rate", "peer", (run) => 1 / p99(run)),
  false,
)}
- tracking node lag p99 at ${options.rate} events/s: **${fmt(nodeP99)} ms** (median of rounds)

Tracking node memory per idle socket: **${fmt(bytesPerSocket / 1024, 1)} KiB** (RSS growth while the ${sockets}
sockets connected, divided by ${sockets}).
`;
}

/** Median of a figure of one server's runs at one load point. */
function medianOf(
  result: FanoutBenchResult,
  server: ServerName,
  load: LoadPoint,
  figure: (run: FanoutRun) => number,
): number {
  return median(
    result.runs.filter((run) => run.server === server && run.load === load).map(figure),
  );
}

/** The fan-out's charts: each server's frames/s and CPU per frame at both load points, and lag p99 at the latency point (medians of rounds). */
export function fanoutCharts(result: FanoutBenchResult): NamedChart[] {
  const { options } = result;
  const servers = Object.keys(SERVERS) as ServerName[];
  const short: Record<ServerName, string> = {
    node: "tracking node",
    rawSend: "raw Bun.serve, ws.send",
    rawPublish: "raw Bun.serve, publish",
    peer: "Socket.IO 4 + Redis adapter",
  };
  const groups = (figure: (run: FanoutRun) => number) =>
    (
      [
        ["rate", `${options.rate} events/s`],
        ["max", `offered ${options.maxRate} events/s`],
      ] as const
    ).map(([load, label]) => ({
      label,
      bars: servers.map((server) => ({
        name: short[server],
        value: medianOf(result, server, load, figure),
      })),
    }));
  const sockets = options.orders * options.perOrder;
  return [
    {
      name: "fanout-frames",
      kind: "bar",
      title: `Fan-out: frames/s delivered to ${sockets} sockets (same events, same run)`,
      y: { label: "frames/s delivered" },
      groups: groups((run) => run.framesPerSecond),
    },
    {
      name: "fanout-lag-p99",
      kind: "bar",
      title: `Fan-out: lag p99 at ${options.rate} events/s, publish → frame received (goal ≤ 25 ms)`,
      y: { label: "lag p99, ms", log: true },
      groups: [
        {
          label: `${options.rate} events/s over ${sockets} sockets`,
          bars: servers.map((server) => ({
            name: short[server],
            value: medianOf(result, server, "rate", (run) => run.lagMs.p99),
          })),
        },
      ],
    },
    {
      name: "fanout-cpu-per-frame",
      kind: "bar",
      title: "Fan-out: server CPU µs per frame delivered (lower is better)",
      y: { label: "CPU µs per frame" },
      groups: groups((run) => run.serverMicrosPerFrame),
    },
  ];
}
