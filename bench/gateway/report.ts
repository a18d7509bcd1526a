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
  const { options, hello, statusMax, statusAtRate, offers, ratio } = result;
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
${row(`GET /v1/orders/{id}/status at ${options.statusRate} req/s`, statusAtRate)}
${row(`POST /v1/dispatch/offers at ${options.offerRate} req/s`, offers)}

**Status throughput / bare route: ${fmt(ratio * 100)}%.**
`;
}
