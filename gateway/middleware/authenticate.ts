import type { MiddlewareHandler } from "hono";
import type { Role } from "../../core/auth/identity";
import { bearerToken, type TokenVerifier } from "../../core/auth/token-verifier";
import { EdgeError } from "../../core/errors/edge-error";
import type { GatewayEnv } from "../context";

/**
 * Verifies the bearer token and sets `identity`; 401 without a valid token,
 * 403 when `roles` is given and the caller has none of them.
 */
export function authenticate(
  verifier: TokenVerifier,
  roles?: readonly Role[],
): MiddlewareHandler<GatewayEnv> {
  return async function requireIdentity(c, next) {
    const token = bearerToken(c.req.header("authorization"));
    if (!token) throw new EdgeError("unauthenticated", "missing bearer token");
    const identity = await verifier.verify(token);
    if (roles && !roles.includes(identity.role))
      throw new EdgeError("forbidden", `requires role ${roles.join(" or ")}`);
    c.set("identity", identity);
    await next();
  };
}
