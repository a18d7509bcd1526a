import type { MiddlewareHandler } from "hono";
import type { Role } from "../../core/auth/identity";
import { EdgeError } from "../../core/errors/edge-error";
import type { GatewayEnv } from "../context";

/** 403 unless the caller (set by `authenticate`) has one of `roles`. */
export function requireRole(...roles: Role[]): MiddlewareHandler<GatewayEnv> {
  if (roles.length === 0) throw new Error("requireRole: name at least one role");
  return async function checkRole(c, next) {
    if (!roles.includes(c.get("identity").role))
      throw new EdgeError("forbidden", `requires role ${roles.join(" or ")}`);
    await next();
  };
}
