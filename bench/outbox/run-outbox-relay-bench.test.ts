import { expect, test } from "bun:test";
import { outboxReport } from "./report";
import { runOutboxRelayBench } from "./run-outbox-relay-bench";

// Only that the bench runs end to end and every change is relayed: speed is
// measured by `bun run bench`, never asserted in tests.
test("the outbox relay bench runs end to end at a tiny size", async () => {
  const result = await runOutboxRelayBench({
    seconds: 1,
    rate: 200,
    unrelatedKeys: 5_000,
    backlog: 500,
    rounds: 1,
    progress: () => undefined,
  });
  expect(result.runs.map((run) => run.unrelatedKeys)).toEqual([0, 5_000]);
  for (const run of result.runs) {
    expect(run.changes).toBe(200);
    expect(run.relayed).toBe(200);
    expect(run.roundP99Ms).toHaveLength(1);
    expect(run.roundDrainPerSecond[0]).toBeGreaterThan(0);
    expect(run.lagMs.p99).toBeGreaterThanOrEqual(run.lagMs.p50);
  }
  expect(outboxReport(result, "bun run bench", "test machine")).toMatch(
    /Same-run ratios, 5,000 keys ÷ none: drain \(medians\)\s+\d/,
  );
}, 60_000);
