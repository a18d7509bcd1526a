import type { Context, MiddlewareHandler } from "hono";
import { EdgeError } from "../../core/errors/edge-error";
import { createRefusalsUntilReset } from "../../core/limits/refusals-until-reset";
import type { RedisClient } from "../../core/redis/scripts";
import { takeRateLimit } from "../../core/redis/scripts";
import type { GatewayEnv } from "../context";
import { isRedisUnavailable } from "./error-handler";

/** Identities this node remembers as past their limit (oldest forgotten first past this many). */
const MAX_SPENT_IDENTITIES = 100_000;

/**
 * Per-identity fixed-window rate limit counted in Redis (one Lua call), so
 * every gateway node shares the budget. Sets `RateLimit-Limit`,
 * `RateLimit-Remaining`, `RateLimit-Reset` (seconds); over the limit: 429
 * with `Retry-After`. Runs after `authenticate`. While the counter's Redis
 * shard is unreachable (failing over) the request goes on uncounted: an
 * identity whose counter sits on that shard must not lose every route,
 * most of which need other shards only.
 */
export function rateLimit(options: {
  client: RedisClient;
  limit: number;
  windowMs: number;
  now?: () => number;
  /** Told of each request refused with 429 (a metric). */
  onRefused?: () => void;
  /** Told of each request let through uncounted while the counter's shard is unreachable. */
  onUnchecked?: () => void;
  /**
   * Requests whose route starts its own Redis reads (reads only: no change,
   * no call out) before the count is in, so both go to Redis in the same
   * turn: one round trip where there were two. Such a route awaits
   * `c.var.admitted` before it answers; one that answers without waiting
   * is still held to the limit: a refusal replaces its answer. An identity
   * this node has seen spend its window's budget is counted first instead,
   * until the window resets: its refusals cost Redis no record read.
   */
  readAhead?: (c: Context<GatewayEnv>) => boolean;
  /** How many spent identities this node remembers (default 100,000). */
  maxSpentIdentities?: number;
}): MiddlewareHandler<GatewayEnv> {
  const { client, limit, windowMs, now = Date.now, onRefused, onUnchecked, readAhead } = options;
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error("rateLimit: limit must be a positive integer");
  if (!Number.isInteger(windowMs) || windowMs < 1)
    throw new Error("rateLimit: windowMs must be a positive integer");
  const spent = createRefusalsUntilReset({
    maxEntries: options.maxSpentIdentities ?? MAX_SPENT_IDENTITIES,
    now,
  });

  /** Takes the count: RateLimit-* headers on the answer, or 429 when over the limit. */
  async function admit(c: Context<GatewayEnv>, key: string): Promise<void> {
    const at = now();
    const decision = await takeRateLimit(client, key, limit, windowMs, at).catch(
      (error: unknown) => {
        if (isRedisUnavailable(error)) return undefined;
        throw error;
      },
    );
    if (!decision) {
      onUnchecked?.();
      return;
    }
    // Budget spent: this identity's next requests are refused, so none of them reads ahead.
    if (decision.remaining === 0) spent.remember(key, decision.resetAtMs);
    else spent.forget(key);
    const resetSeconds = Math.max(1, Math.ceil((decision.resetAtMs - at) / 1000));
    c.header("RateLimit-Limit", String(decision.limit));
    c.header("RateLimit-Remaining", String(decision.remaining));
    c.header("RateLimit-Reset", String(resetSeconds));
    if (!decision.allowed) {
      onRefused?.();
      c.header("Retry-After", String(resetSeconds));
      throw new EdgeError("rate_limited", "too many requests");
    }
  }

  return async function limitRequests(c, next) {
    const identity = c.get("identity");
    const key = `${identity.role}:${identity.sub}`;
    const admitted = admit(c, key);
    if (!readAhead?.(c) || spent.leftMs(key) > 0) {
      await admitted;
      await next();
      return;
    }
    // Handled here until the route awaits it (no unhandled rejection meanwhile).
    admitted.catch(() => undefined);
    c.set("admitted", admitted);
    await next();
    // The route's own refusal is already the answer; a route that did not wait gets it now.
    await admitted.catch((error: unknown) => {
      if (c.error !== error) throw error;
    });
  };
}
