import { expect, test } from "bun:test";
import { renderChart } from "../support/svg-chart";
import { fanoutCharts, fanoutReport } from "./report";
import { runFanoutBench, SERVERS } from "./run-fanout-bench";

// Only that the bench runs end to end and reports well-formed figures: speed is
// measured by `bun run bench`, never asserted in tests.
test("the fan-out bench runs end to end at a tiny size, every server delivering to every socket", async () => {
  const result = await runFanoutBench({
    orders: 5,
    perOrder: 2,
    seconds: 1,
    rate: 50,
    maxRate: 200,
    rounds: 1,
    warmupSeconds: 0.5,
    progress: () => undefined,
  });
  expect(result.runs.map((run) => `${run.server}/${run.load}`).sort()).toEqual(
    Object.keys(SERVERS)
      .flatMap((server) => [`${server}/max`, `${server}/rate`])
      .sort(),
  );
  for (const run of result.runs) {
    expect(run.sockets).toBe(10);
    expect(run.framesPerSecond).toBeGreaterThan(0);
    expect(run.eventsPerSecond).toBeGreaterThan(0);
    expect(run.closedEarly).toBe(0);
    expect(Object.keys(run.cpu).sort()).toEqual(["publisher", "redis", "server", "watchers"]);
    // Read from the node's /metrics: none of the others has such a count.
    expect(run.conflatedPerSecond === undefined).toBe(run.server !== "node");
  }
  expect(fanoutReport(result, "bun run bench", "test machine")).toMatch(
    /node ÷ raw per-socket send: \*\*\d+%\*\*/,
  );
  for (const chart of fanoutCharts(result)) expect(renderChart(chart)).not.toContain("NaN");
}, 120_000);
