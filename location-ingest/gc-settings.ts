import { type Env, readInt } from "../core/config/env";

/**
 * How the ingest's JavaScriptCore heap collects, for an operator who wants
 * fewer collections. Under load the ingest allocates a few KB per ping, all
 * short-lived; with Bun's own settings JavaScriptCore runs a young-generation
 * collection about 3 times a second at 10,000-20,000 pings/s, each stopping
 * the process 10-20 ms. Most are timer-driven: after an allocation burst one
 * is scheduled about ten times the last pause later, and Bun adds a timer of
 * its own. INGEST_GC_HEAP_MB > 0 turns both timers off and lets the heap
 * allocate that many MB between two collections (JavaScriptCore's minimum
 * heap size). Off by default: measured at 256 (bench/RESULTS.md, ingest
 * analysis) it cut collections 6-8× and the time paused 3-4×, but each
 * collection got longer and the ingest spent 1.25-1.34× the CPU per ping
 * (fresh heap pages faulted in every cycle), and the write tail did not
 * improve on a 2-core machine.
 *
 * JavaScriptCore reads these options only when the process starts, so main.ts
 * restarts the process in place (execve: same pid, same descriptors) with
 * them added to its environment before anything else runs. A variable the
 * environment already sets is kept.
 */
export const DEFAULT_GC_HEAP_MB = 0;

/** INGEST_GC_HEAP_MB, checked (0, the default: Bun's own collector settings). */
export function readGcHeapMb(env: Env): number {
  return readInt(env, "INGEST_GC_HEAP_MB", DEFAULT_GC_HEAP_MB, { min: 0, max: 65_536 });
}

/** The collector variables `env` lacks (none when INGEST_GC_HEAP_MB is 0). */
export function gcSettingsToAdd(env: Env): Record<string, string> {
  const heapMb = readGcHeapMb(env);
  if (heapMb === 0) return {};
  const settings: Record<string, string> = {
    // Bytes allocated between two collections (JavaScriptCore's minimum heap size).
    BUN_JSC_largeHeapSize: String(heapMb * 2 ** 20),
    // No timer-driven collections: JavaScriptCore's (0% of CPU for them) nor Bun's.
    BUN_JSC_collectionTimerMaxPercentCPU: "0",
    BUN_GC_TIMER_DISABLE: "1",
  };
  return Object.fromEntries(Object.entries(settings).filter(([name]) => env[name] === undefined));
}

/**
 * Restarts this process in place with the collector variables it lacks;
 * returns when it has them all already, when INGEST_GC_HEAP_MB is invalid
 * (the config loader then stops the process naming it) or where the runtime
 * cannot replace its own image.
 */
export function restartWithGcSettings(): void {
  let missing: Record<string, string>;
  try {
    missing = gcSettingsToAdd(process.env);
  } catch {
    return;
  }
  if (Object.keys(missing).length === 0 || typeof process.execve !== "function") return;
  process.execve(
    process.execPath,
    [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { ...process.env, ...missing },
  );
}
