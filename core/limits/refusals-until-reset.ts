/**
 * A node's memory of keys (client addresses, identities) that a fixed-window
 * limit has refused, each until its window resets: what lets a limit answer
 * the next request from a Map lookup instead of from Redis. At most
 * `maxEntries` (oldest forgotten first: a forgotten key is only asked about
 * again), and an entry is dropped at its reset, so a flood of many keys
 * cannot grow memory without limit.
 */
export function createRefusalsUntilReset(options: { maxEntries: number; now?: () => number }) {
  const { maxEntries, now = Date.now } = options;
  if (!Number.isInteger(maxEntries) || maxEntries < 1)
    throw new Error("createRefusalsUntilReset: maxEntries must be a positive integer");
  // Insertion order is reset order: every key of a limit shares its windows, and a key
  // remembered again moves to the end. So the resets that are due sit at the front.
  const until = new Map<string, number>();

  function dropDue(at: number): void {
    for (const [key, resetAtMs] of until) {
      if (resetAtMs > at) return;
      until.delete(key);
    }
  }

  return {
    /** Milliseconds until `key`'s window resets: 0 when it is not remembered (or has reset). */
    leftMs(key: string): number {
      if (until.size === 0) return 0;
      const at = now();
      dropDue(at);
      const resetAtMs = until.get(key);
      if (resetAtMs === undefined) return 0;
      if (resetAtMs > at) return resetAtMs - at;
      until.delete(key);
      return 0;
    },
    /** Remembers `key` as refused until `resetAtMs`. */
    remember(key: string, resetAtMs: number): void {
      if (until.get(key) === resetAtMs) return;
      dropDue(now());
      until.delete(key);
      if (until.size >= maxEntries) until.delete(until.keys().next().value as string);
      until.set(key, resetAtMs);
    },
    forget(key: string): void {
      until.delete(key);
    },
    /** How many keys are remembered (after dropping those whose window has reset). */
    size(): number {
      dropDue(now());
      return until.size;
    },
  };
}

export type RefusalsUntilReset = ReturnType<typeof createRefusalsUntilReset>;
