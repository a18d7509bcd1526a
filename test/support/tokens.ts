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

/** Ids unique to one test, so tests share a Redis without flushing it. */
let counter = 0;
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
