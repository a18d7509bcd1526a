import type { KeyRef } from "./jwks-keys";

export const ROLES = ["customer", "rider", "restaurant", "dispatcher", "ops"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling, as proven by a verified token; never taken from a body or query. */
export interface Identity {
  readonly sub: string;
  readonly role: Role;
  /** Riders only: the city whose geo shard they write to. */
  readonly city?: string;
  /** Expiry, Unix seconds. */
  readonly exp: number;
  /**
   * With a fetched JWKS, the key that signed the token: sessions opened with
   * it end when the identity provider revokes that key (core/auth/token-lifetime.ts).
   */
  readonly key?: KeyRef;
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}
