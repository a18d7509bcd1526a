import type { Identity } from "../auth/identity";
import { isExpiredToken, type TokenVerifier } from "../auth/token-verifier";
import { EdgeError } from "../errors/edge-error";
import type { AuthFailureLimiter } from "./auth-failure-limit";

/**
 * A token's identity under the failed-auth limit, the one rule of every tier
 * that checks tokens from the Internet. A blocked address gets 429
 * `rate_limited` with Retry-After before any verification, except for a token
 * this node has already verified (a real user behind the same NAT as the
 * attacker keeps working). Only a forged or malformed token counts: a missing
 * one costs nothing to refuse, and an expired one is an honest app back from
 * sleep (counted, many phones behind one carrier NAT would block their shared
 * address). The address (a call into the server) is read only when it matters.
 */
export async function verifyWithinLimit(
  verifier: TokenVerifier,
  token: string | undefined,
  failures: {
    limiter: AuthFailureLimiter;
    address: () => string;
    /** Told of each refusal with 429 (a metric). */
    onRefused?: () => void;
  },
): Promise<Identity> {
  const { limiter, address } = failures;
  const refuse = (retryAfterSeconds: number) => {
    failures.onRefused?.();
    return new EdgeError("rate_limited", "too many failed authentications from this address", {
      retryAfterSeconds,
    });
  };
  if (limiter.anyBlocked()) {
    const blocked = limiter.blockedFor(address());
    if (blocked > 0) {
      const identity = token ? verifier.cached(token) : undefined;
      if (!identity) throw refuse(blocked);
      return identity;
    }
  }
  if (!token) throw new EdgeError("unauthenticated", "missing bearer token");
  try {
    return await verifier.verify(token);
  } catch (error) {
    if (error instanceof EdgeError && error.code === "unauthenticated" && !isExpiredToken(error)) {
      const blocked = await limiter.recordFailure(address()).catch(() => 0);
      if (blocked > 0) throw refuse(blocked);
    }
    throw error;
  }
}
