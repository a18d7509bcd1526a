import type { Role } from "../../core/auth/identity";
import { mintToken } from "../../core/auth/mint-token";

/** The HS256 secret every test process signs and verifies with. */
export const TEST_JWT_SECRET = "test-secret-0123456789abcdef-0123456789";

export function testToken(
  sub: string,
  role: Role,
  city?: string,
  ttlSeconds?: number,
): Promise<string> {
  return mintToken(TEST_JWT_SECRET, {
    sub,
    role,
    ...(city ? { city } : {}),
    ...(ttlSeconds ? { ttlSeconds } : {}),
  });
}

/** When a token minted here expires, in epoch milliseconds (its `exp` claim is whole seconds). */
export function tokenExpMs(token: string): number {
  const payload = JSON.parse(atob(token.split(".")[1] ?? "")) as { exp?: unknown };
  if (typeof payload.exp !== "number") throw new Error("the token has no exp claim");
  return payload.exp * 1000;
}

/** Ids unique to one test, so tests share a Redis without flushing it. */
let counter = 0;
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
