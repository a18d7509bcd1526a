import { expect, test } from "bun:test";
import { ConfigError } from "../core/config/env";
import { loadIngestConfig } from "./config";
import { gcSettingsToAdd } from "./gc-settings";

test("INGEST_GC_HEAP_MB=256: the heap allocates 256 MB between collections and no timer collects", () => {
  expect(gcSettingsToAdd({ INGEST_GC_HEAP_MB: "256" })).toEqual({
    BUN_JSC_largeHeapSize: String(256 * 2 ** 20),
    BUN_JSC_collectionTimerMaxPercentCPU: "0",
    BUN_GC_TIMER_DISABLE: "1",
  });
  expect(gcSettingsToAdd({ INGEST_GC_HEAP_MB: "1024" }).BUN_JSC_largeHeapSize).toBe(
    String(2 ** 30),
  );
});

test("what the environment already sets is kept; once all are set nothing is added (no restart loop)", () => {
  const operator = {
    INGEST_GC_HEAP_MB: "256",
    BUN_JSC_largeHeapSize: "100000000",
    BUN_GC_TIMER_DISABLE: "0",
  };
  const added = gcSettingsToAdd(operator);
  expect(added).toEqual({ BUN_JSC_collectionTimerMaxPercentCPU: "0" });
  expect(gcSettingsToAdd({ ...operator, ...added })).toEqual({});
});

test("by default (or 0) Bun's own settings are kept; a bad value stops the start naming it", () => {
  expect(gcSettingsToAdd({})).toEqual({});
  expect(gcSettingsToAdd({ INGEST_GC_HEAP_MB: "0" })).toEqual({});
  expect(() => gcSettingsToAdd({ INGEST_GC_HEAP_MB: "lots" })).toThrow(ConfigError);
  const base = { REDIS_URL: "redis://127.0.0.1:6379", JWT_SECRET: "x".repeat(32) };
  expect(loadIngestConfig(base).gcHeapMb).toBe(0);
  expect(() => loadIngestConfig({ ...base, INGEST_GC_HEAP_MB: "-1" })).toThrow(
    /INGEST_GC_HEAP_MB: must be between 0 and 65536/,
  );
});
