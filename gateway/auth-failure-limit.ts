import type { Context } from "hono";
import { getConnInfo } from "hono/bun";
import type { RedisClient } from "../core/redis/scripts";
import { takeRateLimit } from "../core/redis/scripts";
import { createRefusalsUntilReset } from "./refusals-until-reset";

/** Addresses remembered as blocked on this node (oldest forgotten first past this many). */
const MAX_BLOCKED_ADDRESSES = 100_000;

export interface AuthFailureLimiter {
  /** True while this node remembers some address as blocked: only then does a request's address matter before its token is checked. */
  anyBlocked(): boolean;
  /** Seconds this address stays blocked (0: not blocked). No Redis: a Map lookup. */
  blockedFor(address: string): number;
  /** Counts one failed authentication; resolves to 0 while within the budget, else the seconds blocked. */
  recordFailure(address: string): Promise<number>;
}

/**
 * Failed token checks per client address, counted across gateway nodes in
 * Redis (the same fixed-window script as the per-identity limit). Past
 * `limit` failures in a window the address is blocked until the window
 * ends, and each node remembers that locally, so a flood of forged tokens
 * costs one Map lookup per request: no signature check, no Redis call.
 * Only failures reach Redis; a valid token costs nothing here.
 */
export function createAuthFailureLimiter(options: {
  client: RedisClient;
  limit: number;
  windowMs: number;
  now?: () => number;
}): AuthFailureLimiter {
  const { client, limit, windowMs, now = Date.now } = options;
  const blocked = createRefusalsUntilReset({ maxEntries: MAX_BLOCKED_ADDRESSES, now });
  return {
    anyBlocked: () => blocked.size() > 0,
    blockedFor: (address) => Math.ceil(blocked.leftMs(address) / 1000),
    async recordFailure(address) {
      const at = now();
      const decision = await takeRateLimit(client, `authfail:${address}`, limit, windowMs, at);
      if (decision.remaining > 0) return 0;
      // The budget is spent: from the next request on, refuse here without asking Redis.
      blocked.remember(address, decision.resetAtMs);
      return decision.allowed ? 0 : Math.max(1, Math.ceil((decision.resetAtMs - at) / 1000));
    },
  };
}

/**
 * The caller's address: the TCP peer, or with `trustedHeader` (opt-in, for
 * a gateway reachable only through a balancer) the header's rightmost
 * entry, the one the balancer itself wrote; entries to its left came from
 * the client and are ignored.
 */
export function clientAddressReader(trustedHeader?: string): (c: Context) => string {
  return function clientAddress(c) {
    if (trustedHeader) {
      const value = c.req.header(trustedHeader);
      const last = value?.split(",").at(-1)?.trim();
      if (last) return last;
    }
    try {
      return getConnInfo(c).remote.address ?? "unknown";
    } catch {
      // Not served by Bun.serve (app.request in a unit test): one shared bucket.
      return "unknown";
    }
  };
}
