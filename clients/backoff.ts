// Reconnect delays for the client libraries: exponential backoff with
// "equal jitter" (half the step fixed, half random), so a fleet of apps
// that lost the same server does not come back in one wave, and a single
// app still waits at least half a step.

export interface BackoffOptions {
  /** The first step (ms); the first delay is in [firstMs/2, firstMs). */
  readonly firstMs: number;
  /** The largest step (ms): delays never exceed it. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { firstMs: 500, maxMs: 30_000 };

export interface Backoff {
  /** The delay before the next attempt; each call doubles the step, up to maxMs. */
  next(): number;
  /** After a success (a frame, an ack): the next failure starts again at firstMs. */
  reset(): void;
}

export function createBackoff(
  options: Partial<BackoffOptions> = {},
  random: () => number = Math.random,
): Backoff {
  const { firstMs, maxMs } = { ...DEFAULT_BACKOFF, ...options };
  let step = firstMs;
  return {
    next() {
      const delay = step / 2 + random() * (step / 2);
      step = Math.min(maxMs, step * 2);
      return Math.min(maxMs, delay);
    },
    reset() {
      step = firstMs;
    },
  };
}

/** The longest a server's Retry-After holds a client back (the edge itself sends 1 to 5 s). */
export const RETRY_AFTER_MAX_MS = 60_000;

/**
 * A `Retry-After` value (delta-seconds, as the edge sends it on every 429 and
 * 503: an HTTP header, a Connect header or a gRPC trailer) in ms, or 0 when
 * absent or not a positive number. A repeated header ("2, 2") counts by its
 * first value. The clients wait at least this long, even past their backoff's
 * largest step, so a fleet of apps does not hammer a server that said when to
 * come back; but never past RETRY_AFTER_MAX_MS: a proxy's "3600" must not stop
 * a rider's GPS for an hour (nor overflow a timer into an immediate retry).
 */
export function retryAfterMs(value: string | null | undefined): number {
  const seconds = Number(value?.split(",")[0]?.trim());
  if (!value || !Number.isFinite(seconds) || seconds <= 0) return 0;
  return Math.min(seconds * 1000, RETRY_AFTER_MAX_MS);
}
