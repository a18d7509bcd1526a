import type { FailoverBenchResult } from "./run-failover-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const seconds = (ms: number) => fmt(ms / 1000, 1);

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

/** The Redis Cluster failover section of bench/RESULTS.md. */
export function failoverReport(
  result: FailoverBenchResult,
  command: string,
  machine: string,
): string {
  const { options, acked, kills } = result;
  const [off, on] = acked;
  const ratio = (pick: (run: (typeof acked)[number]) => number) =>
    off && on ? fmt(pick(on) / pick(off), 2) : "n/a";
  const counts = (statuses: ReadonlyMap<number, number>) =>
    [...statuses].map(([status, n]) => `${status}×${n}`).join(" ");
  return `
Command: \`${command}\` — machine: ${machine}.

**What a replica's acknowledgement costs.** A 3-master, 3-replica cluster; a load
process runs the status script (transition-order.lua) as the gateway does, with
\`ORDER_WRITE_REPLICAS\` 0 (the master's word) and 1 (WAIT for one replica, on a
connection of its own), ${options.rounds} alternating rounds of ${options.rate} changes/s for
${options.seconds} s, then as fast as 200 in flight go.

| ORDER_WRITE_REPLICAS | p50 per round | p99 per round | most changes/s | failed |
|---:|---:|---:|---:|---:|
${acked
  .map(
    (run) =>
      `| ${run.replicas} | ${run.p50Ms.map((ms) => fmt(ms, 2)).join(", ")} ms | ${run.p99Ms.map((ms) => fmt(ms, 2)).join(", ")} ms | ${fmt(run.maxPerSecond)} | ${run.failed} |`,
  )
  .join("\n")}

Same-run ratios, 1 ÷ 0: p50 (medians) ${ratio((run) => median(run.p50Ms))}, p99 (medians)
${ratio((run) => median(run.p99Ms))}, most changes/s ${ratio((run) => run.maxPerSecond)}.

**A master killed under load** (\`test/support/failover-scenario.ts\`, the e2e
test's scenario, ${kills.length} times on fresh clusters with a 1 s
\`cluster-node-timeout\`): a rider streams a ping every 100 ms and a customer
watches an order, both on the victim's slots; ${options.orders} orders (a third on the
victim's slots) step through READY, PICKED_UP, DELIVERED through the gateway, a
client reading the order after each 503; customers place orders with an
Idempotency-Key. kill -9 of the master; once its replica is promoted the dead
process is restarted (it rejoins, empty, as the replica; a shard's order changes
are acknowledged again once it has synced). Times are from the kill; "cluster whole
again" is when every node reports the cluster ok with every replica synced.

| run | replica promoted | shard's reads non-200 | pings accepted again | courier on the map again | order changes acked again | cluster whole again | pings reported dropped | status answers | creates | acked changes | lost |
|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|
${kills
  .map(
    (k, i) =>
      `| ${i + 1} | ${seconds(k.promotedMs)} s | ${seconds(k.shardReadOutageMs)} s | ${seconds(k.pingsBackMs)} s | ${seconds(k.mapBackMs)} s | ${seconds(k.writesBackMs)} s | ${seconds(k.wholeAgainMs)} s | ${k.droppedPings} | ${counts(k.statusAnswers)} | ${counts(k.createAnswers)} | ${k.acked} | ${k.lost} |`,
  )
  .join("\n")}
`;
}
