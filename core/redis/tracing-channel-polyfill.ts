import diagnosticsChannel from "node:diagnostics_channel";

const CHANNELS = ["start", "end", "asyncStart", "asyncEnd", "error"] as const;

/**
 * Node's `TracingChannel.hasSubscribers` is missing in Bun. ioredis reads it
 * before wrapping every command in a traced promise and, seeing undefined,
 * traces every command with nobody listening (~5% of the ingest's CPU).
 * This defines it as Node does: true when any of its channels has a
 * subscriber. Does nothing where the runtime already has it.
 */
export function polyfillTracingChannelHasSubscribers(): void {
  const probe = diagnosticsChannel.tracingChannel("delivery-edge:probe");
  const prototype = Object.getPrototypeOf(probe) as object;
  if ("hasSubscribers" in probe) return;
  Object.defineProperty(prototype, "hasSubscribers", {
    configurable: true,
    get(this: Record<(typeof CHANNELS)[number], { hasSubscribers: boolean } | undefined>) {
      return CHANNELS.some((name) => this[name]?.hasSubscribers === true);
    },
  });
}
