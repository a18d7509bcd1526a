import type { NamedChart } from "../support/chart-files";
import type { GatewayBenchResult, HttpRun } from "./run-gateway-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const cpu = (shares: Record<string, number>) =>
  Object.entries(shares)
    .map(([name, share]) => `${name} ${fmt(share * 100)}%`)
    .join(", ");

/** The gateway process's CPU per request answered (µs), from its share of a core over the run. */
const gatewayMicros = (run: HttpRun) => ((run.cpu.gateway ?? 0) * 1e6) / run.requestsPerSecond;

/** Latencies in ms: the lean generator's to 0.01 ms, autocannon's whole milliseconds. */
const ms = (run: HttpRun, value: number | undefined) =>
  value === undefined ? "—" : fmt(value, run.tool === "lean" ? 2 : 0);
const latencies = (run: HttpRun) =>
  `${ms(run, run.latencyMs.p50)} / ${ms(run, run.latencyMs.p99)} / ${ms(run, run.latencyMs.p999)}`;
/** The lean generator's answers against the gateway's own count of that route's requests meanwhile. */
const counted = (run: HttpRun) =>
  run.answered === undefined ? "—" : `${run.answered} / ${run.served ?? "?"}`;

function row(label: string, run: HttpRun): string {
  return `| ${label} | ${run.tool} | ${fmt(run.requestsPerSecond)} | ${latencies(run)} | ${run.non2xx + run.errors} | ${cpu(run.cpu)} | ${fmt(gatewayMicros(run))} |`;
}

/** The status read's p99 at 10,000 req/s and the bare route's in the same run, if the curve has that rate. */
export function tenThousandTail(result: GatewayBenchResult) {
  const point = result.curve.find((p) => p.rate === 10_000);
  return point && { status: point.status.latencyMs.p99, bare: point.bare.latencyMs.p99 };
}

/** Each stage's CPU µs per request, what it added to the one before, and the rest (Bun.serve) from the end-to-end run. */
function breakdownRows(result: GatewayBenchResult) {
  const { stages } = result.breakdown;
  const rows = stages.map((stage, index) => ({
    ...stage,
    added: stage.cpuMicros - (index === 0 ? 0 : (stages[index - 1]?.cpuMicros ?? 0)),
  }));
  const inProcess = stages[stages.length - 1]?.cpuMicros ?? 0;
  return { rows, inProcess, outside: gatewayMicros(result.statusMax) - inProcess };
}

/** What the request metrics cost a status read: their stage against the read in process, and against its end-to-end CPU. */
export function metricsCost(result: GatewayBenchResult) {
  const { rows, inProcess } = breakdownRows(result);
  const micros = rows.find((row) => row.short === "metrics")?.added ?? 0;
  return {
    micros,
    shareInProcess: micros / inProcess,
    shareEndToEnd: micros / gatewayMicros(result.statusMax),
  };
}

/** The Gateway section of bench/RESULTS.md. */
export function gatewayReport(
  result: GatewayBenchResult,
  command: string,
  machine: string,
): string {
  const { options, hello, statusMax, curve, offers, ratio, breakdown } = result;
  const { rows, inProcess, outside } = breakdownRows(result);
  const metrics = metricsCost(result);
  const { validation, loadAverage } = result;
  const tail = tenThousandTail(result);
  return `
Command: \`${command}\` — machine: ${machine}; load average (1 min) ${fmt(loadAverage.start, 2)} at the start, ${fmt(loadAverage.end, 2)} at the end.

One gateway process on its own redis-server, each load in its own process; ${options.seconds} s per run.
The gateway runs as deployed: request metrics on and an access line per request at
\`LOG_LEVEL=info\` (to /dev/null). The baseline is a route on the same server without token, rate
limit or Redis (\`/healthz\`, which still passes request id, metrics, access line and body limit).
"lean" is \`bench/gateway/lean-http-load.ts\`: 100 keep-alive connections, a prebuilt request,
answers counted by Content-Length, latencies to the microsecond; closed loop for "as fast as it
goes", open loop on a fixed schedule for the offered rates, each latency taken from the request's
due time (a request waiting for a free connection or a late timer counts its wait). autocannon
(100 connections; 20 for offers) reports whole milliseconds.

| run | load | req/s | p50 / p99 / p99.9 ms | non-2xx + errors | CPU (share of one core) | gateway CPU µs / request |
|---|---|---:|---:|---:|---|---:|
${row("bare route, as fast as it goes", hello)}
${row("GET /v1/orders/{id}/status, as fast as it goes", statusMax)}
${row(`POST /v1/dispatch/offers at ${options.offerRate} req/s`, offers)}

**Status throughput / bare route: ${fmt(ratio * 100)}%** (goal ≥ 50%).

The lean generator against autocannon: the bare route at ${validation.rate} req/s, back to back
(answers: the generator's count / the gateway's own count of \`/healthz\` requests in that run):

| load | achieved req/s | p50 / p99 / p99.9 ms | answers | load generator's CPU |
|---|---:|---:|---:|---:|
${[validation.autocannon, validation.lean].map((run) => `| ${run.tool} | ${fmt(run.requestsPerSecond)} | ${latencies(run)} | ${counted(run)} | ${fmt((run.cpu.load ?? 0) * 100)}% |`).join("\n")}

Latency against offered load (lean generator, open loop; each rate ${options.seconds} s, the bare route
then status; send lag = how late the generator wrote requests after their due time, p99):

| offered req/s | bare route: req/s, p50 / p99 / p99.9 ms | status: req/s, p50 / p99 / p99.9 ms | send lag p99 ms (bare, status) | status non-2xx + errors | answers / gateway's count (status) |
|---:|---:|---:|---:|---:|---:|
${curve.map(({ rate, bare, status }) => `| ${rate} | ${fmt(bare.requestsPerSecond)}, ${latencies(bare)} | ${fmt(status.requestsPerSecond)}, ${latencies(status)} | ${ms(bare, bare.sendLagMs?.p99)}, ${ms(status, status.sendLagMs?.p99)} | ${status.non2xx + status.errors} | ${counted(status)} |`).join("\n")}
${tail ? `\n**p99 at 10,000 req/s: status ${fmt(tail.status, 2)} ms, bare route ${fmt(tail.bare, 2)} ms in the same run** (goal ≤ 5 ms).\n` : ""}
Where a status read's CPU goes (\`bench/gateway/status-breakdown.ts\`, after the runs above, on the same
Redis): the same request through \`app.fetch\` (no sockets) of apps built from the gateway's own
pieces, each stage adding one; ${breakdown.inFlight} requests in flight, ${breakdown.requestsPerRound} per stage and round,
${breakdown.rounds} interleaved rounds, each after a full collection; the process's CPU µs per request, the least of
the rounds (other work on the machine only adds), and the most req/s. "Outside app.fetch" is the
end-to-end status run's gateway CPU per request less the last stage: Bun.serve's sockets, HTTP
parsing and writing (and the machine's noise).

| stage | CPU µs / request | added | req/s in process |
|---|---:|---:|---:|
${rows.map((r) => `| ${r.name} | ${fmt(r.cpuMicros, 1)} | ${fmt(r.added, 1)} | ${fmt(r.requestsPerSecond)} |`).join("\n")}
| outside app.fetch (end to end − in process) | ${fmt(gatewayMicros(statusMax), 1)} | ${fmt(outside, 1)} | — |

**Request metrics on: ${fmt(metrics.micros, 1)} µs per request, ${fmt(metrics.shareInProcess * 100, 1)}% of the status read in process
(${fmt(inProcess, 1)} µs), ${fmt(metrics.shareEndToEnd * 100, 1)}% of its gateway CPU end to end (${fmt(gatewayMicros(statusMax), 1)} µs).** Alone, in a loop:
\`recordRequest\` ${fmt(breakdown.recordRequestMicros, 2)} µs per call; the access line ${fmt(breakdown.accessLine.redactedMicros, 1)} µs through
the root logger's redaction, ${fmt(breakdown.accessLine.plainMicros, 1)} µs through an unredacted pino child, ${fmt(breakdown.accessLine.batchedMicros, 2)} µs through the
gateway's batched access log (\`gateway/access-log.ts\`, its writes included).
`;
}

/** The gateway's charts: latency against offered load, and throughput against the bare route. */
export function gatewayCharts(result: GatewayBenchResult): NamedChart[] {
  // A 0 ms latency (autocannon's whole milliseconds) is drawn at 0.05 ms on the log axis.
  const ms = (value: number) => Math.max(value, 0.05);
  const at = (pick: (point: GatewayBenchResult["curve"][number]) => HttpRun, p: "p50" | "p99") =>
    result.curve.map((point) => {
      const run = pick(point);
      return {
        x: point.rate,
        y: ms(run.latencyMs[p]),
        note: `achieved ${fmt(run.requestsPerSecond)} req/s`,
      };
    });
  const { rows, outside } = breakdownRows(result);
  return [
    {
      name: "gateway-status-latency",
      kind: "line",
      title: "GET /v1/orders/{id}/status: latency against offered load",
      x: { label: "offered load (requests/s)" },
      y: { label: "latency (ms, log scale)", log: true },
      series: [
        { name: "status p99", points: at((p) => p.status, "p99") },
        { name: "status p50", points: at((p) => p.status, "p50") },
        { name: "bare route p99", points: at((p) => p.bare, "p99"), dashed: true },
        {
          name: "goal: p99 ≤ 5 ms at 10k/s",
          points: [{ x: 10_000, y: 5, note: "issue 12's goal" }],
          dashed: true,
        },
      ],
    },
    {
      name: "gateway-throughput",
      kind: "bar",
      title: "Gateway: requests/s as fast as each goes",
      y: { label: "requests/s" },
      groups: [
        {
          label: `same gateway, same run: status = ${fmt(result.ratio * 100)}% of the bare route`,
          bars: [
            { name: "bare route (/healthz)", value: result.hello.requestsPerSecond },
            { name: "GET /v1/orders/{id}/status", value: result.statusMax.requestsPerSecond },
          ],
        },
      ],
    },
    {
      name: "gateway-status-breakdown",
      kind: "bar",
      title: "GET /v1/orders/{id}/status: gateway CPU per request, by stage",
      y: { label: "CPU µs per request" },
      groups: [
        ...rows.map((row) => ({
          label: row.short,
          bars: [{ name: "CPU µs added", value: row.added }],
        })),
        { label: "Bun.serve", bars: [{ name: "CPU µs added", value: outside }] },
      ],
    },
  ];
}
