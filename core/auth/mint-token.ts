import { SignJWT } from "jose";
import type { Role } from "./identity";

export interface TokenClaims {
  sub: string;
  role: Role;
  city?: string;
  /** Lifetime in seconds (default one day). */
  ttlSeconds?: number;
  issuer?: string;
  audience?: string;
}

/** Signs an HS256 development token; production tokens come from the identity provider. */
export async function mintToken(secret: string, claims: TokenClaims): Promise<string> {
  const { sub, role, city, ttlSeconds = 86_400, issuer, audience } = claims;
  let jwt = new SignJWT({ role, ...(city ? { city } : {}) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
