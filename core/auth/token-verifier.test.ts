import { describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { EdgeError } from "../errors/edge-error";
import { mintToken } from "./mint-token";
import { bearerToken, createTokenVerifier, isExpiredToken } from "./token-verifier";

const SECRET = "s".repeat(40);
const verifier = createTokenVerifier({ secret: SECRET, issuer: "edge-dev", audience: "edge" });
const claims = { issuer: "edge-dev", audience: "edge" };

async function rejection(promise: Promise<unknown>): Promise<EdgeError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof EdgeError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

function unsignedToken(payload: object): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString("base64url");
  return `${encode({ alg: "none", typ: "JWT" })}.${encode(payload)}.`;
}

describe("createTokenVerifier", () => {
  test("accepts a valid HS256 token and returns the identity from its claims", async () => {
    const token = await mintToken(SECRET, { sub: "r1", role: "rider", city: "london", ...claims });
    expect(await verifier.verify(token)).toMatchObject({
      sub: "r1",
      role: "rider",
      city: "london",
    });
  });

  test("refuses alg:none, a wrong key, expiry, and a wrong issuer or audience", async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const cases = [
      unsignedToken({
        sub: "r1",
        role: "rider",
        city: "london",
        exp,
        iss: "edge-dev",
        aud: "edge",
      }),
      await mintToken("k".repeat(40), { sub: "r1", role: "ops", ...claims }),
      await mintToken(SECRET, { sub: "r1", role: "ops", ttlSeconds: -10, ...claims }),
      await mintToken(SECRET, { sub: "r1", role: "ops", issuer: "someone-else", audience: "edge" }),
      await mintToken(SECRET, { sub: "r1", role: "ops", issuer: "edge-dev", audience: "other" }),
      "not.a.jwt",
    ];
    for (const token of cases) {
      expect((await rejection(verifier.verify(token))).code).toBe("unauthenticated");
    }
  });

  test("only a genuine token past its exp is told apart as expired", async () => {
    const expired = await rejection(
      verifier.verify(
        await mintToken(SECRET, { sub: "r1", role: "ops", ttlSeconds: -10, ...claims }),
      ),
    );
    expect([expired.code, expired.message, isExpiredToken(expired)]).toEqual([
      "unauthenticated",
      "token expired",
      true,
    ]);
    // Expired too, but signed with another key or for another issuer or audience: forged.
    for (const token of [
      await mintToken("k".repeat(40), { sub: "r1", role: "ops", ttlSeconds: -10, ...claims }),
      await mintToken(SECRET, {
        sub: "r1",
        role: "ops",
        ttlSeconds: -10,
        issuer: "x",
        audience: "edge",
      }),
      await mintToken(SECRET, {
        sub: "r1",
        role: "ops",
        ttlSeconds: -10,
        issuer: "edge-dev",
        audience: "x",
      }),
      unsignedToken({ sub: "r1", role: "ops", exp: 1, iss: "edge-dev", aud: "edge" }),
      "not.a.jwt",
    ]) {
      const refused = await rejection(verifier.verify(token));
      expect([refused.code, refused.message, isExpiredToken(refused)]).toEqual([
        "unauthenticated",
        "invalid token",
        false,
      ]);
    }
  });

  test("an expired token presented again is refused without another signature check, while it stays expired", async () => {
    let now = Date.now();
    const clocked = createTokenVerifier({ secret: SECRET }, { now: () => now });
    const token = await mintToken(SECRET, { sub: "c1", role: "customer", ttlSeconds: 5 });
    now += 10_000;
    const subtle = crypto.subtle;
    const verify = subtle.verify.bind(subtle);
    let signatureChecks = 0;
    subtle.verify = ((...args: Parameters<typeof verify>) => {
      signatureChecks += 1;
      return verify(...args);
    }) as typeof subtle.verify;
    try {
      for (let i = 0; i < 20; i++) {
        const refused = await rejection(clocked.verify(token));
        expect([refused.message, isExpiredToken(refused)]).toEqual(["token expired", true]);
      }
      expect(signatureChecks).toBe(1);
      // A forged token gets the full check every time (the failed-auth limit deals with those).
      const forged = `${token.slice(0, -4)}AAAA`;
      for (let i = 0; i < 3; i++) await rejection(clocked.verify(forged));
      expect(signatureChecks).toBe(4);
      // The host's clock set back before exp: checked in full again, and good.
      now -= 10_000;
      expect((await clocked.verify(token)).sub).toBe("c1");
      expect(signatureChecks).toBe(5);
    } finally {
      subtle.verify = verify;
    }
  });

  test("refuses unknown roles, riders without a city and ids that could break keys", async () => {
    const sign = (payload: Record<string, unknown>) =>
      new SignJWT(payload)
        .setProtectedHeader({ alg: "HS256" })
        .setIssuer("edge-dev")
        .setAudience("edge")
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(SECRET));
    for (const payload of [
      { sub: "u1", role: "admin" },
      { sub: "r1", role: "rider" },
      { sub: "r{1}", role: "customer" },
    ]) {
      expect((await rejection(verifier.verify(await sign(payload)))).code).toBe("unauthenticated");
    }
  });

  test("a JWKS verifier accepts ES256 and refuses an HS256 token (no algorithm confusion)", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
    const jwksVerifier = createTokenVerifier({}, { localJwks: { keys: [jwk] } });
    const good = await new SignJWT({ role: "customer" })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setSubject("c1")
      .setExpirationTime("1h")
      .sign(privateKey);
    expect((await jwksVerifier.verify(good)).sub).toBe("c1");
    const hs = await mintToken(SECRET, { sub: "c1", role: "customer" });
    expect((await rejection(jwksVerifier.verify(hs))).code).toBe("unauthenticated");
  });

  test("a cached token stops verifying once it expires", async () => {
    let now = Date.now();
    const cached = createTokenVerifier({ secret: SECRET }, { now: () => now });
    const token = await mintToken(SECRET, { sub: "c1", role: "customer", ttlSeconds: 5 });
    expect((await cached.verify(token)).sub).toBe("c1");
    now += 10_000;
    expect((await rejection(cached.verify(token))).code).toBe("unauthenticated");
  });
});

describe("bearerToken", () => {
  test("takes the token from 'Bearer <jwt>' only", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken(null)).toBeUndefined();
  });
});
