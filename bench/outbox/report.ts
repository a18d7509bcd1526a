import type { OutboxBenchResult } from "./run-outbox-relay-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

/** The Outbox relay section of bench/RESULTS.md. */
export function outboxReport(result: OutboxBenchResult, command: string, machine: string): string {
  const { options, runs, relayEveryMs } = result;
  const [empty, full] = runs;
  const ratio = (pick: (run: (typeof runs)[number]) => number) =>
    empty && full ? fmt(pick(full) / pick(empty), 2) : "n/a";
  return `
Command: \`${command}\` — machine: ${machine}.

Two keyspaces side by side in one run: Redis with no other keys, and Redis with
${options.unrelatedKeys.toLocaleString("en")} unrelated keys. Each has its own
redis-server, Kafka wire fixture and real gateway process relaying
(\`OUTBOX_RELAY_EVERY_MS\`=${relayEveryMs}, all 64 partitions leased to it); status
changes come from a load process running the status script (transition-order.lua),
as the gateway does. ${options.rounds} rounds per keyspace, alternating between the
two, first one then the other first (so load from elsewhere on the machine hits both alike); in each, a backlog of
${options.backlog.toLocaleString("en")} changes is written with no relay running, a
gateway starts and drains it (entries/s from its holding every lease to the last
record stored by the broker), then ${options.rate} changes/s come for ${options.seconds} s,
with the lag of each entry from its stream id (when Redis wrote it) to the broker
storing it; then the gateway drains (SIGTERM). "One full SCAN" is
\`SCAN MATCH outbox:* COUNT 1000\` over the keyspace: what every pass of the old
relay did before it could move an entry.

| unrelated keys | backlog drain, median (entries/s) | drain per round | lag p50 at ${options.rate}/s | lag p99 | p99 per round | lag max | relayed / changes | gateway CPU | Redis CPU | one full SCAN (old relay, per pass) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${runs
  .map(
    (run) =>
      `| ${run.unrelatedKeys.toLocaleString("en")} | ${fmt(median(run.roundDrainPerSecond))} | ${run.roundDrainPerSecond.map((rate) => fmt(rate)).join(", ")} | ${fmt(run.lagMs.p50)} ms | ${fmt(run.lagMs.p99)} ms | ${run.roundP99Ms.map((p99) => fmt(p99)).join(", ")} ms | ${fmt(run.lagMs.max)} ms | ${run.relayed} / ${run.changes} | ${fmt((run.cpu.gateway ?? 0) * 100)}% | ${fmt((run.cpu.redis ?? 0) * 100)}% | ${fmt(run.fullScanMs)} ms |`,
  )
  .join("\n")}

Same-run ratios, ${options.unrelatedKeys.toLocaleString("en")} keys ÷ none: drain (medians)
${ratio((run) => median(run.roundDrainPerSecond))}, lag p99 ${ratio((run) => run.lagMs.p99)} (median of the
rounds' p99 ${ratio((run) => median(run.roundP99Ms))}), gateway CPU
${ratio((run) => run.cpu.gateway ?? Number.NaN)}, one full SCAN ${ratio((run) => run.fullScanMs)}.
`;
}
