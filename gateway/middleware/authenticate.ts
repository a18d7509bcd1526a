import type { MiddlewareHandler } from "hono";
import { bearerToken, type TokenVerifier } from "../../core/auth/token-verifier";
import { EdgeError } from "../../core/errors/edge-error";
import type { GatewayEnv } from "../context";

/** Verifies the bearer token and sets `identity`; 401 without a valid token. Roles: `requireRole`. */
export function authenticate(verifier: TokenVerifier): MiddlewareHandler<GatewayEnv> {
  return async function requireIdentity(c, next) {
    const token = bearerToken(c.req.header("authorization"));
    if (!token) throw new EdgeError("unauthenticated", "missing bearer token");
    c.set("identity", await verifier.verify(token));
    await next();
  };
}
