import type { Context, MiddlewareHandler } from "hono";
import { bearerToken, isExpiredToken, type TokenVerifier } from "../../core/auth/token-verifier";
import { EdgeError } from "../../core/errors/edge-error";
import type { AuthFailureLimiter } from "../../core/limits/auth-failure-limit";
import type { GatewayEnv } from "../context";

/**
 * Verifies the bearer token and sets `identity`; 401 without a valid token.
 * With `failures`, forged or malformed tokens are limited per client
 * address (a missing token costs nothing to refuse, and an expired one is an
 * honest app back from sleep: neither counts, or many phones behind one
 * carrier NAT would block their shared address): a blocked
 * address gets 429 `rate_limited` with Retry-After before any verification,
 * except for a token this node has already verified (a real user behind the
 * same NAT as the attacker keeps working). Roles: `requireRole`.
 */
export function authenticate(
  verifier: TokenVerifier,
  failures?: {
    limiter: AuthFailureLimiter;
    clientAddress: (c: Context) => string;
    /** Told of each request refused with 429 by the failed-auth limit (a metric). */
    onRefused?: () => void;
  },
): MiddlewareHandler<GatewayEnv> {
  function refuse(retryAfterSeconds: number): EdgeError {
    failures?.onRefused?.();
    return new EdgeError("rate_limited", "too many failed authentications from this address", {
      retryAfterSeconds,
    });
  }
  return async function requireIdentity(c, next) {
    const token = bearerToken(c.req.header("authorization"));
    // The address (a call into the server per request) is read only when it matters.
    if (failures?.limiter.anyBlocked()) {
      const blocked = failures.limiter.blockedFor(failures.clientAddress(c));
      if (blocked > 0) {
        const identity = token ? verifier.cached(token) : undefined;
        if (!identity) throw refuse(blocked);
        c.set("identity", identity);
        return next();
      }
    }
    try {
      if (!token) throw new EdgeError("unauthenticated", "missing bearer token");
      c.set("identity", await verifier.verify(token));
    } catch (error) {
      if (
        failures &&
        token &&
        error instanceof EdgeError &&
        error.code === "unauthenticated" &&
        !isExpiredToken(error)
      ) {
        const address = failures.clientAddress(c);
        const blocked = await failures.limiter.recordFailure(address).catch(() => 0);
        if (blocked > 0) throw refuse(blocked);
      }
      throw error;
    }
    await next();
  };
}
