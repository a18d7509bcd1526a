import type { Logger } from "pino";

/**
 * kafkajs 2.x's request queue arms `setTimeout(check, throttledUntil - now)`
 * after every answer, even when nothing is throttled (throttledUntil is -1,
 * so the delay is about minus the epoch in ms). The runtime clamps it to
 * 1 ms, which is what kafkajs means, and emits TimeoutNegativeWarning: noise
 * on every tier that talks to Kafka, nothing an operator can act on.
 */
function isKafkajsQueueTimer(warning: Error): boolean {
  return (
    warning.name === "TimeoutNegativeWarning" &&
    (warning.stack ?? "").includes("/kafkajs/src/network/requestQueue/")
  );
}

/**
 * Process warnings (deprecations, negative or overflowing timers, leaked
 * listeners...) go to the tier's log, one JSON line at warn like every
 * other line, instead of the runtime's plain text on stderr; kafkajs's
 * negative request-queue timer is dropped (a debug line). Only the runtime's
 * printer is replaced (Node's and Bun's listener are both named `onWarning`;
 * Bun 1.4.5's is native): a preload's or an APM agent's listener keeps
 * hearing every warning. NODE_NO_WARNINGS=1 or --no-warnings: none is logged.
 */
export function logProcessWarnings(logger: Logger): void {
  for (const listener of process.listeners("warning"))
    if (listener.name === "onWarning") process.off("warning", listener);
  if (process.env.NODE_NO_WARNINGS === "1" || process.execArgv.includes("--no-warnings")) return;
  process.on("warning", (warning) => {
    if (isKafkajsQueueTimer(warning)) {
      logger.debug("kafkajs request-queue TimeoutNegativeWarning dropped");
      return;
    }
    logger.warn({ err: warning }, `${warning.name}: ${warning.message}`);
  });
}
