import type { NamedChart } from "../support/chart-files";
import type { GatewayBenchResult, HttpRun } from "./run-gateway-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const cpu = (shares: Record<string, number>) =>
  Object.entries(shares)
    .map(([name, share]) => `${name} ${fmt(share * 100)}%`)
    .join(", ");

function row(label: string, run: HttpRun): string {
  return `| ${label} | ${fmt(run.requestsPerSecond)} | ${fmt(run.latencyMs.p50)} / ${fmt(run.latencyMs.p99)} | ${run.non2xx + run.errors} | ${cpu(run.cpu)} |`;
}

/** The Gateway section of bench/RESULTS.md. */
export function gatewayReport(
  result: GatewayBenchResult,
  command: string,
  machine: string,
): string {
  const { options, hello, statusMax, curve, offers, ratio } = result;
  return `
Command: \`${command}\` — machine: ${machine}.

autocannon (100 connections; 20 for offers) in its own process against one gateway process on its
own redis-server; ${options.seconds} s per run. The baseline is a route on the same server without
token, rate limit or Redis (\`/healthz\`, which still passes request id, access log, CORS and body
limit). Latencies are autocannon's (1 ms resolution).

| run | req/s | p50 / p99 ms | non-2xx + errors | CPU (share of one core) |
|---|---:|---:|---:|---|
${row("bare route", hello)}
${row("GET /v1/orders/{id}/status, as fast as it goes", statusMax)}
${row(`POST /v1/dispatch/offers at ${options.offerRate} req/s`, offers)}

Latency against offered load (each rate ${options.seconds} s, bare route and status in turn):

| offered req/s | bare route: achieved req/s, p50 / p99 ms | status: achieved req/s, p50 / p99 ms | status non-2xx + errors |
|---:|---:|---:|---:|
${curve.map(({ rate, bare, status }) => `| ${rate} | ${fmt(bare.requestsPerSecond)}, ${fmt(bare.latencyMs.p50)} / ${fmt(bare.latencyMs.p99)} | ${fmt(status.requestsPerSecond)}, ${fmt(status.latencyMs.p50)} / ${fmt(status.latencyMs.p99)} | ${status.non2xx + status.errors} |`).join("\n")}

**Status throughput / bare route: ${fmt(ratio * 100)}%.**
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
  ];
}
