import type { ReplayBenchResult } from "./run-replay-bench";

const n = (value: number) => Math.round(value).toLocaleString("en-US");

/** The Location spill replay section of bench/RESULTS.md. */
export function replayReport(result: ReplayBenchResult, command: string, machine: string): string {
  const { options, replayPerSecond, producePerSecond, delivered, duplicates } = result;
  const cpu = Object.entries(result.cpu)
    .map(([name, share]) => `${name} ${Math.round(share * 100)}%`)
    .join(", ");
  return `
Command: \`${command}\` — machine: ${machine}.

${n(options.records)} location records of ${n(options.riders)} riders wait in one city's spill
(\`location-spill:{city}\`, as a Kafka outage leaves them); one ingest process starts and its
replay sends them to \`rider-locations\` on the repo's Kafka wire-protocol fixture, deleting each
batch after the broker's ack. Baseline, same run: the same records produced to the same broker by
a bare kafkajs producer, 1,000 per request.

| run | records/s | delivered | duplicates | riders out of order | CPU (share of one core) |
|---|---:|---:|---:|---:|---|
| replay (spill → Kafka, fenced delete) | ${n(replayPerSecond)} | ${n(delivered)} | ${n(duplicates)} | ${n(result.riderOrderBreaks)} | ${cpu} |
| bare producer | ${n(producePerSecond)} | ${n(options.records)} | — | — | — |

**Replay / bare producer: ${Math.round((replayPerSecond / producePerSecond) * 100)}%.** At this rate
an outage that spilled a city's ${n(options.records)} records is replayed in ${(options.records / replayPerSecond).toFixed(1)} s
once Kafka is back (live records wait behind the spill, so the replay rate bounds how soon they flow again).
`;
}
