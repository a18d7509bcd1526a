import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeResultsSection } from "../support/results-file";
import { ingestReport } from "./report";
import { runIngestBench } from "./run-ingest-bench";

// Only that the bench runs end to end and reports well-formed figures: speed is
// measured by `bun run bench`, never asserted in tests.
test("the ingest bench runs end to end at a tiny size and writes its section", async () => {
  const result = await runIngestBench({
    streams: 10,
    seconds: 1,
    rates: [100],
    allocationRate: 100,
    pinnedRates: [100],
    floorRedisRates: [100],
    // This checkout again as the baseline: only that the before/after runs and reports.
    baselineEntry: join(import.meta.dir, "..", "..", "location-ingest", "main.ts"),
    peer: true,
    warmupSeconds: 1,
    progress: () => undefined,
  });
  const { ingest, peer, baseline, floor } = result;
  const runs = [
    ingest.closedLoop,
    ingest.closedLoopConnect,
    ...ingest.curve.map((step) => step.run),
    ...(ingest.pinned ?? []).map((step) => step.run),
    ...floor.flatMap((step) => [step.run, step.withRedis]),
  ];
  // The floor beside each open-loop step, with Redis writes where asked.
  expect(floor.map((step) => step.rate)).toEqual([100]);
  expect(ingest.pinned).toHaveLength(1);
  expect(baseline?.allocation.heapBytesPerPing).toBeGreaterThanOrEqual(0);
  expect(baseline?.closedLoop.ackedPerSecond).toBeGreaterThan(0);
  expect(baseline?.atGoalRate.writeLatencyMs).toBeDefined();
  for (const run of [...runs, peer?.closedLoop, ...(peer?.curve ?? []).map((step) => step.run)]) {
    if (!run) throw new Error("a run is missing");
    expect(run.ackedPerSecond).toBeGreaterThan(0);
    expect(run.dropped).toEqual({});
    expect(run.errors).toEqual([]);
    expect(Number.isFinite(run.ackLatencyMs.p99)).toBe(true);
    expect(run.cpuMicrosPerPing).toBeGreaterThan(0);
  }
  // Counted where the GC log has every byte: the ingest with its GC timers off, and the peer.
  expect(ingest.allocation.heapBytesPerPing).toBeGreaterThanOrEqual(0);
  expect(ingest.closedLoop.heapBytesPerPing).toBeUndefined();
  expect(peer?.closedLoop.heapBytesPerPing).toBeGreaterThanOrEqual(0);
  expect(Object.keys(ingest.closedLoop.cpu).sort()).toEqual(["load", "redis", "server"]);
  expect(ingest.closedLoop.writeLatencyMs).toBeDefined();
  expect(result.raw.pingsPerSecond).toBeGreaterThan(0);
  expect(result.ratio).toBeGreaterThan(0);

  const out = join(mkdtempSync(join(tmpdir(), "bench-")), "RESULTS.md");
  writeResultsSection(out, "Other", "kept");
  writeResultsSection(out, "Ingest", ingestReport(result, "bun run bench", "test machine"));
  writeResultsSection(
    out,
    "Ingest",
    ingestReport(result, "bun run bench -- again", "test machine"),
  );
  const text = readFileSync(out, "utf8");
  expect(text.match(/## Ingest/g)).toHaveLength(1);
  expect(text).toContain("## Other\n\nkept");
  expect(text).toContain("bun run bench -- again");
  expect(text).toMatch(/Ingest \/ raw ceiling: \d+%/);
  expect(text).toContain("| before |");
  expect(text).toContain("open loop at 100/s, ingest alone on core 0 (Redis, load on core 1)");
  expect(text).toMatch(/closed loop ≥ 80% of the raw pipelined ceiling: \d+%/);
  expect(text).toMatch(
    /\n\| 100 \| \d+ \| [\d.]+ \/ [\d.]+ \| \d+ \| [\d.]+ \/ [\d.]+ \| -?[\d.]+ \| \d+ \|/,
  );
}, 60_000);
