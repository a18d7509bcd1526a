import { createLocalJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { Registry } from "prom-client";
import type { AuthConfig } from "../config/shared-config";
import { EdgeError } from "../errors/edge-error";
import { createAuthMetrics } from "./auth-metrics";
import { type Identity, isRole } from "./identity";
import { createJwksKeys, type JwksKeys, type KeyRef } from "./jwks-keys";
import type { KeyRevocations } from "./token-lifetime";

const HMAC_ALGORITHMS = ["HS256"];
const ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "EdDSA"];
const CITY_PATTERN = /^[a-z0-9-]{1,40}$/;
const ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export interface TokenVerifier extends KeyRevocations {
  /** Resolves to the caller's identity or rejects with EdgeError `unauthenticated`. */
  verify(token: string): Promise<Identity>;
  /** The identity of a token already verified, not expired and whose key is still published, without verifying again. */
  cached(token: string): Identity | undefined;
}

export interface TokenVerifierOptions {
  /** Verified tokens kept (keyed by the token, dropped at exp); 0 disables the cache. */
  cacheSize?: number;
  now?: () => number;
  /** A JWKS document given inline instead of fetched (tests, air-gapped setups). */
  localJwks?: Parameters<typeof createLocalJWKSet>[0];
  /** The tier's registry: JWKS fetch failures and tokens refused for want of keys are counted on it. */
  registry?: Registry;
}

/**
 * Builds the verifier. Verification with jose costs about as much as a whole
 * small request (docs/performance-notes.md), so verified tokens are cached until their exp.
 */
export function createTokenVerifier(
  config: AuthConfig,
  options: TokenVerifierOptions = {},
): TokenVerifier {
  const { cacheSize = 10_000, now = Date.now } = options;
  // Registered whatever the key source, so a tier's /metrics always lists them (0 with JWT_SECRET).
  const events = options.registry && createAuthMetrics(options.registry);
  const jwks: JwksKeys | undefined =
    !options.localJwks && config.jwks ? createJwksKeys({ ...config.jwks, now, events }) : undefined;
  const asymmetricKeys: JWTVerifyGetKey | undefined = options.localJwks
    ? createLocalJWKSet(options.localJwks)
    : jwks?.getKey;
  const secret = config.secret ? new TextEncoder().encode(config.secret) : undefined;
  // With a fetched JWKS each identity remembers its key: a key the provider revokes
  // (drops from its JWKS) takes the tokens it signed out of the cache at the next refresh.
  const cache = new Map<string, Identity>();
  // Tokens already found expired (signature good, exp past), with their exp in
  // seconds: one replayed again and again costs a Map lookup, not a signature check.
  const expired = new Map<string, number>();

  /** Keeps at most cacheSize entries: a Map keeps insertion order, so the first key is the oldest. */
  function keep<V>(map: Map<string, V>, token: string, value: V): void {
    if (cacheSize === 0) return;
    if (map.size >= cacheSize) map.delete(map.keys().next().value as string);
    map.set(token, value);
  }

  function usable(identity: Identity | undefined): Identity | undefined {
    if (!identity || identity.exp * 1000 <= now()) return undefined;
    if (identity.key && jwks && !jwks.holds(identity.key)) return undefined;
    return identity;
  }

  async function verifyUncached(token: string): Promise<Identity> {
    // Taken before: a set changing during the check leaves the entry on the older generation
    // (checked again), never the reverse. Generation 0 (no set yet): the key came from the
    // fetch this check made (one fetch per JWT_JWKS_REFETCH_MIN_MS at most).
    const before = jwks?.generation();
    const verifyOptions = {
      issuer: config.issuer,
      audience: config.audience,
      requiredClaims: ["exp", "sub"],
      currentDate: new Date(now()),
    };
    const { payload, protectedHeader } = asymmetricKeys
      ? await jwtVerify(token, asymmetricKeys, {
          ...verifyOptions,
          algorithms: ASYMMETRIC_ALGORITHMS,
        })
      : await jwtVerify(token, secret as Uint8Array, {
          ...verifyOptions,
          algorithms: HMAC_ALGORITHMS,
        });
    const identity = identityFromClaims(payload);
    if (before === undefined || !jwks) return identity;
    const generation = before === 0 ? jwks.generation() : before;
    const { kid } = protectedHeader;
    const key: KeyRef = kid === undefined ? { generation } : { kid };
    return Object.freeze({ ...identity, key });
  }

  return {
    cached(token) {
      return usable(cache.get(token));
    },
    // A shared secret or an inline JWKS is never revoked while the process runs.
    whenRevoked: (key, onRevoked) => (jwks ? jwks.whenRevoked(key, onRevoked) : () => {}),
    async verify(token) {
      const entry = cache.get(token);
      const cached = usable(entry);
      if (cached) return cached;
      if (entry) cache.delete(token);
      const expiredAt = expired.get(token);
      if (expiredAt !== undefined) {
        // A clock set back (exp ahead again) gets the full check.
        if (expiredAt * 1000 <= now()) {
          const cause = new errors.JWTExpired("token expired", { exp: expiredAt }, "exp");
          throw new EdgeError("unauthenticated", "token expired", { cause });
        }
        expired.delete(token);
      }
      let verified: Identity;
      try {
        verified = await verifyUncached(token);
      } catch (error) {
        // auth_unavailable: the keys could not be had; the token may be fine.
        if (error instanceof EdgeError) throw error;
        if (error instanceof errors.JWTExpired) {
          if (typeof error.payload.exp === "number") keep(expired, token, error.payload.exp);
          throw new EdgeError("unauthenticated", "token expired", { cause: error });
        }
        throw new EdgeError("unauthenticated", "invalid token", { cause: error });
      }
      keep(cache, token, verified);
      return verified;
    },
  };
}

function identityFromClaims(payload: JWTPayload): Identity {
  const { sub, exp, role, city } = payload;
  if (typeof sub !== "string" || !ID_PATTERN.test(sub)) throw new Error("bad sub claim");
  if (!isRole(role)) throw new Error("bad role claim");
  if (typeof exp !== "number") throw new Error("missing exp");
  if (role === "rider" && (typeof city !== "string" || !CITY_PATTERN.test(city))) {
    throw new Error("rider token without a valid city claim");
  }
  return Object.freeze({ sub, role, exp, ...(typeof city === "string" ? { city } : {}) });
}

/**
 * True for the rejection of a genuine token that has merely expired: jose
 * checks the signature, algorithm, issuer and audience before `exp`, so
 * only a token signed by the identity provider for this edge gets this far.
 * An app back from sleep sends one; it is no sign of an attack.
 */
export function isExpiredToken(error: unknown): boolean {
  return error instanceof EdgeError && error.cause instanceof errors.JWTExpired;
}

/** Pulls the bearer token out of an Authorization header value. */
export function bearerToken(header: string | null | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}
