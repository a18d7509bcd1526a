import { parseCommandLine } from "../config/command-line";
import { ConfigError } from "../config/env";
import { createLogger, type Logger } from "../observability/logger";
import { logProcessWarnings } from "../observability/process-warnings";
import { onShutdown } from "./shutdown";

/**
 * A tier's entry point: starts it, drains it on SIGTERM/SIGINT, and turns a
 * start-up failure into one fatal log line and a non-zero exit (2 for bad
 * configuration, 1 otherwise) rather than a stack trace; a tier that stops
 * serving by itself (`failed`) exits 1 after one fatal line too, unless a
 * SIGTERM drain started first (that drain's exit stands). A drain is cut
 * (exit 1) after the tier's own `drainTimeoutMs`, 15 s when it names none.
 */
export async function runMain(
  tier: string,
  start: (
    logger: Logger,
  ) => Promise<{ drain(): Promise<void>; failed?: Promise<Error>; drainTimeoutMs?: number }>,
): Promise<void> {
  // Tiers take no flags: `--help` says where their settings come from; any flag is refused.
  parseCommandLine(
    {
      usage: `./edge ${tier}`,
      summary: `Runs one ${tier} process; SIGTERM drains it and exits 0.`,
      flags: {},
      notes:
        "Configured from environment variables only (README.md, the tier's Configuration table); a bad\nvalue stops it with one line naming the variable (exit 2).",
    },
    Bun.argv.slice(2),
  );
  const logger = createLogger(tier);
  logProcessWarnings(logger);
  try {
    const app = await start(logger);
    const shutdown = onShutdown(logger, () => app.drain(), { timeoutMs: app.drainTimeoutMs });
    // Stopped by itself (it closed what it served first): out, for the supervisor to restart.
    // Not in the middle of a SIGTERM drain: that one ends the process as it began.
    void app.failed?.then((reason) => {
      if (shutdown.started()) {
        logger.error(`stopped serving while draining: ${reason.message}`);
        return;
      }
      logger.fatal(`stopped serving: ${reason.message}`);
      process.exit(1);
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      logger.fatal({ variable: error.variable }, error.message);
      process.exit(2);
    }
    logger.fatal({ err: error }, "failed to start");
    process.exit(1);
  }
}
