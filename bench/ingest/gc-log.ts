/**
 * Heap allocation and garbage-collection pauses of a server process, read
 * from its runtime's own GC log:
 * - Bun (JavaScriptCore, `BUN_JSC_logGC=1`, on stderr): a collection the
 *   heap asks for is logged with "bytes allocated this cycle: N" (exact, and
 *   reset by every collection), and each pause increment as "p=1.5ms". Bun
 *   and JavaScriptCore also collect on timers, without that line: so
 *   allocation is complete only with both off (`BUN_GC_TIMER_DISABLE=1
 *   BUN_JSC_collectionTimerMaxPercentCPU=0`, a run of its own);
 * - Node (V8, `--trace-gc`, on stdout): one line per collection, the heap
 *   before and after ("12.3 (14.0) -> 8.1 (15.0) MB") and the pause
 *   (", 1.2 / 0.0 ms"); what was allocated between two collections is the
 *   rise from one's after to the next one's before.
 * A caller opens a window and closes it around what it measures.
 */
export interface GcSnapshot {
  readonly allocatedBytes: number;
  readonly collections: number;
  readonly pauseMs: number;
  readonly maxPauseMs: number;
  /** Bun only: collections of the whole heap (JavaScriptCore's FullCollection), not only the young objects. */
  readonly fullCollections: number;
  /** Bun only: bytes the collections marked (found live), MB, summed: their work, whatever the machine's load. */
  readonly markedMb: number;
  /** Bun only: the heap the window's last collection left, MB (NaN with none). */
  readonly heapAfterMb: number;
}

export function gcMeter(
  stderr: ReadableStream<Uint8Array>,
  runtime: "bun" | "node",
  echo: (line: string) => void = () => undefined,
) {
  let allocatedBytes = 0;
  let collections = 0;
  let pauseMs = 0;
  let maxPauseMs = 0;
  let lastAfterMb: number | undefined;
  let fullCollections = 0;
  let markedMb = 0;
  let heapAfterMb = Number.NaN;
  const pause = (ms: number) => {
    pauseMs += ms;
    maxPauseMs = Math.max(maxPauseMs, ms);
  };

  function read(line: string): void {
    if (runtime === "bun") {
      const allocated = /bytes allocated this cycle: (\d+)/.exec(line);
      if (allocated) allocatedBytes += Number(allocated[1]);
      if (line.includes("START M ")) {
        collections += 1;
        if (line.includes("=> FullCollection")) fullCollections += 1;
      }
      // A collection's last line: what it had visited (marked) by its end, and the heap it left.
      const end = /.* v=(\d+)kb .* => (\d+)kb, p=/.exec(line);
      if (end) {
        markedMb += Number(end[1]) / 1024;
        heapAfterMb = Number(end[2]) / 1024;
      }
      for (const increment of line.matchAll(/ p=([\d.]+)ms/g)) pause(Number(increment[1]));
      return;
    }
    const traced =
      /([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \//.exec(
        line,
      );
    if (!traced) {
      if (line.trim()) echo(line);
      return;
    }
    const [beforeMb, afterMb] = [Number(traced[1]), Number(traced[2])];
    if (lastAfterMb !== undefined) allocatedBytes += Math.max(0, beforeMb - lastAfterMb) * 2 ** 20;
    lastAfterMb = afterMb;
    collections += 1;
    pause(Number(traced[3]));
  }

  void (async () => {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of stderr) {
      const lines = (partial + decoder.decode(chunk)).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        // JavaScriptCore's log goes to stderr beside the server's own warnings: keep those.
        if (runtime === "bun" && !/GC|bytes allocated|exceed bytes allowed/.test(line)) {
          if (line.trim()) echo(line);
        }
        read(line);
      }
    }
  })();

  return {
    /** Starts a measured window; its `close()` gives what the window saw. */
    open() {
      const start = { allocatedBytes, collections, pauseMs, fullCollections, markedMb };
      maxPauseMs = 0;
      heapAfterMb = Number.NaN;
      return {
        close: (): GcSnapshot => ({
          allocatedBytes: allocatedBytes - start.allocatedBytes,
          collections: collections - start.collections,
          pauseMs: pauseMs - start.pauseMs,
          maxPauseMs,
          fullCollections: fullCollections - start.fullCollections,
          markedMb: markedMb - start.markedMb,
          heapAfterMb,
        }),
      };
    },
  };
}

export type GcMeter = ReturnType<typeof gcMeter>;
