import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger };

/** The process's root logger: JSON lines (to stdout unless `destination`), one `tier` field, no secrets. */
export function createLogger(
  tier: string,
  level = process.env.LOG_LEVEL ?? "info",
  destination?: DestinationStream,
): Logger {
  const options = {
    level,
    base: { tier, pid: process.pid },
    redact: {
      paths: ["token", "authorization", "*.authorization", "*.token"],
      censor: "[redacted]",
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
