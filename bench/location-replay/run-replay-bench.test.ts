import { expect, test } from "bun:test";
import { replayReport } from "./report";
import { runReplayBench } from "./run-replay-bench";

// Only that the bench runs end to end and every spilled record arrives once, in order:
// speed is measured by `bun run bench`, never asserted in tests.
test("the spill replay bench runs end to end at a tiny size", async () => {
  const result = await runReplayBench({ records: 2_500, riders: 50, progress: () => undefined });
  expect(result.delivered).toBe(2_500);
  expect(result.duplicates).toBe(0);
  expect(result.riderOrderBreaks).toBe(0);
  expect(result.replayPerSecond).toBeGreaterThan(0);
  expect(replayReport(result, "bun run bench", "test machine")).toMatch(
    /Replay \/ bare producer: \d+%/,
  );
}, 60_000);
