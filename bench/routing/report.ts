import type { RoutingBenchResult, Way } from "./run-routing-bench";
import { WAYS } from "./run-routing-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

/** The Edge routing section of bench/RESULTS.md. */
export function routingReport(
  result: RoutingBenchResult,
  options: { upgrades: number; concurrency: number },
  command: string,
  machine: string,
): string {
  const { ways, lookup } = result;
  const row = (way: Way) => {
    const w = ways[way];
    return `| ${WAYS[way]} | ${w.upgrades} (${w.failures} failed) | ${fmt(w.aloneP50Ms, 2)} / ${fmt(w.aloneP99Ms, 2)} | ${fmt(w.p50Ms, 2)} / ${fmt(w.p99Ms, 2)} | ${fmt(w.upgradesPerSecond)} | ${fmt(w.nginxCpuMicros)} | ${fmt(w.trackingCpuMicros)} |`;
  };
  const ring = ways.ring;
  const named = ways.named;
  return `
Command: \`${command}\` — machine: ${machine}.

Debian's nginx on docker/nginx.conf (addresses changed only, TLS with a
self-signed P-256 certificate) in front of three tracking node processes on
one Redis. Each upgrade is a customer's socket for a seeded order, token in
the Authorization header, from open to the first frame (the status; a
\`moved\` would count as a failure), then closed. "Alone": 300 orders, one
upgrade at a time, the three ways taking turns on each order. "Loaded":
${options.upgrades} per way with ${options.concurrency} in flight, over 10 rounds with the ways in a
random order each round; CPU per upgrade is from /proc of nginx's workers
and the tracking processes over each loaded block (the TLS handshake is
nginx's; the client is this bench process, not counted).

| way in | upgrades | alone p50 / p99 ms | loaded p50 / p99 ms | upgrades/s | nginx CPU µs/upgrade | tracking CPU µs/upgrade |
|---|---:|---:|---:|---:|---:|---:|
${(Object.keys(WAYS) as Way[]).map(row).join("\n")}

**What the ring lookup costs** (public route against the node-named URL, same run):
${fmt(ring.aloneP50Ms - named.aloneP50Ms, 2)} ms more at p50 alone (${fmt(ring.aloneP50Ms / named.aloneP50Ms, 2)}×),
${fmt(ring.p50Ms - named.p50Ms, 2)} ms loaded (${fmt(ring.p50Ms / named.p50Ms, 2)}×),
${fmt(ring.nginxCpuMicros - named.nginxCpuMicros)} µs more nginx CPU and
${fmt(ring.trackingCpuMicros - named.trackingCpuMicros)} µs more tracking CPU per upgrade.
The lookup alone (\`GET /ring/owner/{id}\`, ${lookup.requests} in a row on one kept-alive
connection): ${fmt(lookup.microsPerRequest)} µs per request end to end, ${fmt(lookup.nodeCpuMicros)} µs of the
node's CPU.
`;
}
