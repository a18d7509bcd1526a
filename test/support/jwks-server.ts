import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import type { Role } from "../../core/auth/identity";

const ISSUER = "https://id.test";
const AUDIENCE = "delivery-edge";

export interface TestJwksServer {
  /** Env for a tier verifying with this JWKS, refreshed every second while sessions are open. */
  readonly env: Record<string, string>;
  /** Makes a key pair and publishes its public key as `kid`. */
  publish(kid: string): Promise<void>;
  /** Drops `kid` from the published set, as an identity provider revoking it. */
  revoke(kid: string): void;
  /** A token signed with `kid`'s private key, valid for an hour (a rider's in london). */
  token(kid: string, sub: string, role: Role): Promise<string>;
  stop(): void;
}

/** An identity provider's JWKS endpoint that the test controls, on 127.0.0.1. */
export function startJwksServer(): TestJwksServer {
  let published: JWK[] = [];
  const signers = new Map<string, CryptoKey>();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: () => Response.json({ keys: published }),
  });
  return {
    env: {
      JWT_JWKS_URL: `http://127.0.0.1:${server.port}/jwks.json`,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_JWKS_REFRESH_MS: "1000",
      JWT_JWKS_REFETCH_MIN_MS: "100",
    },
    async publish(kid) {
      const { publicKey, privateKey } = await generateKeyPair("ES256");
      signers.set(kid, privateKey);
      published = [...published, { ...(await exportJWK(publicKey)), kid, alg: "ES256" }];
    },
    revoke(kid) {
      published = published.filter((key) => key.kid !== kid);
    },
    token(kid, sub, role) {
      const signer = signers.get(kid);
      if (!signer) throw new Error(`no key ${kid} was published`);
      return new SignJWT({ role, ...(role === "rider" ? { city: "london" } : {}) })
        .setProtectedHeader({ alg: "ES256", kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(sub)
        .setExpirationTime("1h")
        .sign(signer);
    },
    stop: () => server.stop(true),
  };
}
