import type { Logger } from "pino";

/** A drain's cut unless its tier needs longer (a tracking node with a long TTL does). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 15_000;

/**
 * How long a drain waits on one step that needs Redis or Kafka to answer
 * (a QUIT, a last report, a pass under way, a lease give-back, a spill, a
 * producer's disconnect) before it gives up on it and goes on: neither
 * gives its commands a deadline, and a drain must end by itself when one
 * hangs. Each tier's cut counts its steps in these.
 */
export const DRAIN_STEP_WAIT_MS = 1_000;

export interface ShutdownOptions {
  /** Exit anyway after this long, so a stuck drain never blocks a deploy. */
  timeoutMs?: number;
  exit?: (code: number) => void;
}

/**
 * Runs `drain` once on SIGTERM or SIGINT, then exits 0 (1 if the drain
 * failed or timed out). Returns `started()` (a drain began: the exit is its
 * own) and `unregister()`.
 */
export function onShutdown(
  logger: Logger,
  drain: () => Promise<void>,
  options: ShutdownOptions = {},
) {
  const { timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS, exit = (code: number) => process.exit(code) } =
    options;
  let started = false;
  const handle = async (signal: NodeJS.Signals) => {
    if (started) return;
    started = true;
    logger.info({ signal, timeoutMs }, "draining");
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, "drain timed out");
      exit(1);
    }, timeoutMs);
    try {
      await drain();
      logger.info("drained");
      clearTimeout(timer);
      exit(0);
    } catch (error) {
      logger.error({ err: error }, "drain failed");
      clearTimeout(timer);
      exit(1);
    }
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
  return {
    started: () => started,
    unregister() {
      process.off("SIGTERM", handle);
      process.off("SIGINT", handle);
    },
  };
}
