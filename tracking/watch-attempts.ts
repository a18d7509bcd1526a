import type { Identity } from "../core/auth/identity";

/**
 * Watch requests per token identity on this node, in fixed windows: every
 * admitted token spends one before its order is read, so one customer's
 * token cannot make a node read Redis thousands of times a second (unknown
 * or foreign orders, each answered 404; measured at 7,400/s from one
 * token before this budget). In memory like the socket quota: no Redis
 * round trip, nothing to leak after a crash; the counts of a window are
 * dropped when the next one starts, so memory stays bounded by one
 * window's identities.
 */
export function createWatchAttempts(limits: {
  perUser: number;
  perStaff: number;
  windowMs: number;
}) {
  let windowStart = 0;
  let spent = new Map<string, number>();

  return {
    /**
     * Spends one attempt for `identity`: undefined when within its budget,
     * else the seconds until the window ends (Retry-After) and whether this
     * is the identity's first refusal of the window (log it once, not each).
     */
    spend(
      identity: Identity,
      now = Date.now(),
    ): { retryAfterSeconds: number; firstRefusal: boolean } | undefined {
      const start = now - (now % limits.windowMs);
      if (start !== windowStart) {
        windowStart = start;
        spent = new Map();
      }
      const key = `${identity.role}:${identity.sub}`;
      const staff = identity.role === "dispatcher" || identity.role === "ops";
      const count = (spent.get(key) ?? 0) + 1;
      spent.set(key, count);
      const limit = staff ? limits.perStaff : limits.perUser;
      if (count <= limit) return undefined;
      return {
        retryAfterSeconds: Math.max(1, Math.ceil((start + limits.windowMs - now) / 1000)),
        firstRefusal: count === limit + 1,
      };
    },
  };
}

export type WatchAttempts = ReturnType<typeof createWatchAttempts>;
