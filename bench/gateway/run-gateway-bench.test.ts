import { expect, test } from "bun:test";
import { gatewayReport } from "./report";
import { runGatewayBench } from "./run-gateway-bench";

// Only that the bench runs end to end and reports well-formed figures: speed is
// measured by `bun run bench`, never asserted in tests.
test("the gateway bench runs end to end at a tiny size", async () => {
  const result = await runGatewayBench({
    seconds: 1,
    statusRate: 50,
    offerRate: 20,
    progress: () => undefined,
  });
  for (const run of [result.hello, result.statusMax, result.statusAtRate, result.offers]) {
    expect(run.requestsPerSecond).toBeGreaterThan(0);
    expect(run.non2xx + run.errors).toBe(0);
  }
  expect(gatewayReport(result, "bun run bench", "test machine")).toMatch(
    /Status throughput \/ bare route: \d+%/,
  );
}, 60_000);
