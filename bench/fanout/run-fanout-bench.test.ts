import { expect, test } from "bun:test";
import { fanoutReport } from "./report";
import { runFanoutBench } from "./run-fanout-bench";

// Only that the bench runs end to end and reports well-formed figures: speed is
// measured by `bun run bench`, never asserted in tests.
test("the fan-out bench runs end to end at a tiny size", async () => {
  const result = await runFanoutBench({
    orders: 5,
    perOrder: 2,
    seconds: 1,
    rate: 20,
    progress: () => undefined,
  });
  for (const run of [result.latency, result.throughput, result.raw]) {
    expect(run.sockets).toBe(10);
    expect(run.framesPerSecond).toBeGreaterThan(0);
    expect(run.closedEarly).toBe(0);
  }
  expect(Object.keys(result.latency.cpu).sort()).toEqual([
    "ingest",
    "redis",
    "riders",
    "tracking",
    "watchers",
  ]);
  expect(result.ratio).toBeGreaterThan(0);
  expect(fanoutReport(result, "bun run bench", "test machine")).toMatch(
    /Delivered \/ raw ceiling \(both as fast as they go\): \d+%/,
  );
}, 90_000);
