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

/**
 * A `Retry-After` value (delta-seconds, as the edge sends it on every 429 and
 * 503: an HTTP header, a Connect header or a gRPC trailer) in ms, or 0 when
 * absent or not a positive number. The clients wait at least this long, even
 * past their backoff's largest step: a fleet of apps must not hammer a server
 * that said when to come back.
 */
export function retryAfterMs(value: string | null | undefined): number {
  const seconds = Number(value);
  return value && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}
