import type { Context, MiddlewareHandler } from "hono";
import { bearerToken, type TokenVerifier } from "../../core/auth/token-verifier";
import { EdgeError } from "../../core/errors/edge-error";
import type { AuthFailureLimiter } from "../../core/limits/auth-failure-limit";
import { verifyWithinLimit } from "../../core/limits/verify-within-limit";
import type { GatewayEnv } from "../context";

/**
 * Verifies the bearer token and sets `identity`; 401 without a valid token.
 * With `failures`, forged or malformed tokens are limited per client address
 * (core/limits/verify-within-limit.ts: a blocked address gets 429
 * `rate_limited` with Retry-After, except for a token this node has already
 * verified). Roles: `requireRole`.
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
  return async function requireIdentity(c, next) {
    const token = bearerToken(c.req.header("authorization"));
    if (failures) {
      const { limiter, clientAddress, onRefused } = failures;
      c.set(
        "identity",
        await verifyWithinLimit(verifier, token, {
          limiter,
          address: () => clientAddress(c),
          onRefused,
        }),
      );
    } else {
      if (!token) throw new EdgeError("unauthenticated", "missing bearer token");
      c.set("identity", await verifier.verify(token));
    }
    await next();
  };
}
