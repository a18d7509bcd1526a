import pino, { type Logger } from "pino";

export type { Logger };

/** The process's root logger: JSON lines, one `tier` field, no secrets. */
export function createLogger(tier: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    level,
    base: { tier, pid: process.pid },
    redact: {
      paths: ["token", "authorization", "*.authorization", "*.token"],
      censor: "[redacted]",
    },
  });
}
