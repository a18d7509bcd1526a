import { expect, test } from "bun:test";
import { renderChart } from "../support/svg-chart";
import { gatewayCharts, gatewayReport } from "./report";
import { runGatewayBench } from "./run-gateway-bench";

// Only that the bench runs end to end and reports well-formed figures: speed is
// measured by `bun run bench`, never asserted in tests.
test("the gateway bench runs end to end at a tiny size", async () => {
  const result = await runGatewayBench({
    seconds: 1,
    statusRates: [50, 100],
    offerRate: 20,
    breakdownRequests: 200,
    progress: () => undefined,
  });
  const runs = [
    result.hello,
    result.statusMax,
    result.validation.autocannon,
    result.validation.lean,
    ...result.curve.flatMap((p) => [p.bare, p.status]),
    result.offers,
  ];
  for (const run of runs) {
    expect(run.requestsPerSecond).toBeGreaterThan(0);
    expect(run.non2xx + run.errors).toBe(0);
  }
  // Every lean run's answer count is the gateway's own count of that route's requests.
  const lean = runs.filter((run) => run.tool === "lean");
  expect(lean.length).toBe(7);
  for (const run of lean) expect(run.answered).toBe(run.served as number);
  expect(gatewayReport(result, "bun run bench", "test machine")).toMatch(
    /Status throughput \/ bare route: \d+%/,
  );
  const [latency, throughput] = gatewayCharts(result);
  expect(latency?.kind === "line" && latency.series.map((s) => s.points.map((p) => p.x))).toEqual([
    [50, 100],
    [50, 100],
    [50, 100],
    [10_000],
  ]);
  expect(throughput?.kind === "bar" && throughput.groups[0]?.bars.length).toBe(2);
  // Every stage of the status read measured, the request metrics among them; Bun.serve last.
  expect(result.breakdown.stages.map((stage) => stage.short)).toContain("metrics");
  for (const stage of result.breakdown.stages) expect(stage.cpuMicros).toBeGreaterThan(0);
  expect(result.breakdown.accessLine.plainMicros).toBeGreaterThan(0);
  const breakdown = gatewayCharts(result)[2];
  expect(breakdown?.kind === "bar" && breakdown.groups.map((group) => group.label).at(-1)).toBe(
    "Bun.serve",
  );
  for (const chart of gatewayCharts(result)) expect(renderChart(chart)).not.toContain("NaN");
}, 60_000);
