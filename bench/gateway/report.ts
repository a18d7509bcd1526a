import type { NamedChart } from "../support/chart-files";
import type { GatewayBenchResult, HttpRun } from "./run-gateway-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const cpu = (shares: Record<string, number>) =>
  Object.entries(shares)
    .map(([name, share]) => `${name} ${fmt(share * 100)}%`)
    .join(", ");

/** The gateway process's CPU per request answered (µs), from its share of a core over the run. */
const gatewayMicros = (run: HttpRun) => ((run.cpu.gateway ?? 0) * 1e6) / run.requestsPerSecond;

function row(label: string, run: HttpRun): string {
  return `| ${label} | ${fmt(run.requestsPerSecond)} | ${fmt(run.latencyMs.p50)} / ${fmt(run.latencyMs.p99)} | ${run.non2xx + run.errors} | ${cpu(run.cpu)} | ${fmt(gatewayMicros(run))} |`;
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
  return `
Command: \`${command}\` — machine: ${machine}.

autocannon (100 connections; 20 for offers) in its own process against one gateway process on its
own redis-server; ${options.seconds} s per run. The gateway runs as deployed: request metrics on and
an access line per request at \`LOG_LEVEL=info\` (to /dev/null). The baseline is a route on the same
server without token, rate limit or Redis (\`/healthz\`, which still passes request id, metrics,
access line, CORS and body limit). Latencies are autocannon's (1 ms resolution).

| run | req/s | p50 / p99 ms | non-2xx + errors | CPU (share of one core) | gateway CPU µs / request |
|---|---:|---:|---:|---|---:|
${row("bare route", hello)}
${row("GET /v1/orders/{id}/status, as fast as it goes", statusMax)}
${row(`POST /v1/dispatch/offers at ${options.offerRate} req/s`, offers)}

Latency against offered load (each rate ${options.seconds} s, bare route and status in turn):

| offered req/s | bare route: achieved req/s, p50 / p99 ms | status: achieved req/s, p50 / p99 ms | status non-2xx + errors |
|---:|---:|---:|---:|
${curve.map(({ rate, bare, status }) => `| ${rate} | ${fmt(bare.requestsPerSecond)}, ${fmt(bare.latencyMs.p50)} / ${fmt(bare.latencyMs.p99)} | ${fmt(status.requestsPerSecond)}, ${fmt(status.latencyMs.p50)} / ${fmt(status.latencyMs.p99)} | ${status.non2xx + status.errors} |`).join("\n")}

**Status throughput / bare route: ${fmt(ratio * 100)}%.**

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
the root logger's redaction, ${fmt(breakdown.accessLine.plainMicros, 1)} µs through the unredacted child the gateway writes it with.
`;
}

/** The gateway's charts: latency against offered load, and throughput against the bare route. */
export function gatewayCharts(result: GatewayBenchResult): NamedChart[] {
  // autocannon reports whole milliseconds: a 0 ms p50 is drawn at 0.5 ms on the log axis.
  const ms = (value: number) => Math.max(value, 0.5);
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
