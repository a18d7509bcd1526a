import { expect, test } from "bun:test";
import { failoverReport } from "./report";
import { runFailoverBench } from "./run-failover-bench";

// Only that the bench runs end to end and reports its figures: speed is measured
// by `bun run bench`; the failover itself is asserted by test/e2e/cluster-failover.test.ts.
test("the failover bench runs end to end at a tiny size", async () => {
  const result = await runFailoverBench({
    seconds: 1,
    rate: 100,
    rounds: 1,
    kills: 0,
    orders: 6,
    maxChanges: 500,
    progress: () => undefined,
  });
  expect(result.acked.map((run) => run.replicas)).toEqual([0, 1]);
  for (const run of result.acked) {
    expect(run.failed).toBe(0);
    expect(run.maxPerSecond).toBeGreaterThan(0);
    expect(run.p99Ms[0]).toBeGreaterThanOrEqual(run.p50Ms[0] ?? 0);
  }
  expect(failoverReport(result, "bun run bench", "test machine")).toMatch(
    /Same-run ratios, 1 ÷ 0: p50 \(medians\) \d/,
  );
}, 90_000);
