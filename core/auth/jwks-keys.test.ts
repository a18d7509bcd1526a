import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { Registry } from "prom-client";
import { waitUntil } from "../../test/support/wait";
import { EdgeError } from "../errors/edge-error";
import { createTokenVerifier } from "./token-verifier";

// A real JWKS endpoint on loopback that can answer, hang or be down.
type Mode = "ok" | "hang" | "status-500";
const state = { mode: "ok" as Mode, hits: 0, keys: [] as JWK[] };
let server: ReturnType<typeof Bun.serve>;
let url: string;
const signers = new Map<string, CryptoKey>();

async function addKey(kid: string): Promise<JWK> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  signers.set(kid, privateKey);
  return { ...(await exportJWK(publicKey)), kid, alg: "ES256" };
}

function token(kid: string, sub = "c1"): Promise<string> {
  const key = signers.get(kid);
  if (!key) throw new Error(`no key ${kid}`);
  return new SignJWT({ role: "customer" })
    .setProtectedHeader({ alg: "ES256", kid })
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(key);
}

function startJwks(port = 0) {
  return Bun.serve({
    port,
    hostname: "127.0.0.1",
    async fetch() {
      state.hits++;
      if (state.mode === "hang") await Bun.sleep(10_000);
      if (state.mode === "status-500") return new Response("down", { status: 500 });
      return Response.json({ keys: state.keys });
    },
  });
}

beforeAll(async () => {
  state.keys = [await addKey("k1")];
  await addKey("k2");
  server = startJwks();
  url = `http://127.0.0.1:${server.port}/jwks`;
});

afterAll(() => server?.stop(true));

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (error instanceof EdgeError) return error.code;
    throw error;
  }
}

describe("JWKS through the identity provider's outages", () => {
  test("hanging, failing and down: fetched keys keep verifying, unknown keys are a fast 503, refetch is rate limited", async () => {
    let now = Date.now();
    const verifier = createTokenVerifier(
      { jwks: { url, timeoutMs: 300, refetchMinMs: 5_000, refreshMs: 60_000 } },
      { cacheSize: 0, now: () => now },
    );
    state.mode = "ok";
    expect(await outcome(verifier.verify(await token("k1")))).toBe("ok");
    expect(await outcome(verifier.verify(await token("k1", "c2")))).toBe("ok");
    expect(state.hits).toBe(1);

    // A key id the set does not have, just after a good fetch: 401 and no refetch (rate limited).
    expect(await outcome(verifier.verify(await token("k2")))).toBe("unauthenticated");
    expect(state.hits).toBe(1);

    // The endpoint hangs: ten concurrent unknown-key tokens share one fetch, bounded by the timeout.
    state.mode = "hang";
    now += 5_001;
    const started = performance.now();
    const hung = await Promise.all(
      Array.from({ length: 10 }, async () => outcome(verifier.verify(await token("k2")))),
    );
    expect(new Set(hung)).toEqual(new Set(["auth_unavailable"]));
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(state.hits).toBe(2);
    // Right after: 503 at once, no new fetch; the key already fetched still verifies.
    const fast = performance.now();
    expect(await outcome(verifier.verify(await token("k2")))).toBe("auth_unavailable");
    expect(performance.now() - fast).toBeLessThan(100);
    expect(await outcome(verifier.verify(await token("k1", "c3")))).toBe("ok");
    expect(state.hits).toBe(2);

    // Failing (500), and past the refresh age: the background refresh fails, k1 still verifies.
    state.mode = "status-500";
    now += 60_001;
    expect(await outcome(verifier.verify(await token("k1", "c4")))).toBe("ok");
    expect(await outcome(verifier.verify(await token("k2")))).toBe("auth_unavailable");

    // Down (nothing listening): the same.
    server.stop(true);
    now += 5_001;
    expect(await outcome(verifier.verify(await token("k2")))).toBe("auth_unavailable");
    expect(await outcome(verifier.verify(await token("k1", "c5")))).toBe("ok");

    // Back, with the rotated key: once the rate limit allows a fetch, k2 verifies.
    state.mode = "ok";
    state.keys = [state.keys[0] as JWK, await addKey("k2")];
    server = startJwks(Number(new URL(url).port));
    now += 5_001;
    expect(await outcome(verifier.verify(await token("k2")))).toBe("ok");
  });

  test("a verifier that never reached the JWKS answers 503, not 401", async () => {
    const verifier = createTokenVerifier({
      jwks: {
        url: "http://127.0.0.1:9/jwks",
        timeoutMs: 300,
        refetchMinMs: 5_000,
        refreshMs: 60_000,
      },
    });
    expect(await outcome(verifier.verify(await token("k1")))).toBe("auth_unavailable");
    expect(await outcome(verifier.verify("not.a.jwt"))).toBe("unauthenticated");
  });
});

describe("the JWKS's failures, as the tiers' metrics count them", () => {
  test("each failed fetch by reason (malformed, status, timeout, unreachable) and each token refused 503 for want of keys", async () => {
    let mode: "garbage" | "status-500" | "hang" | "ok" = "garbage";
    const provider = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch() {
        if (mode === "hang") await Bun.sleep(2_000);
        if (mode === "garbage") return new Response("<html>sign in</html>");
        if (mode === "status-500") return new Response("down", { status: 500 });
        return Response.json({ keys: state.keys });
      },
    });
    let now = Date.now();
    const registry = new Registry();
    const verifier = createTokenVerifier(
      {
        jwks: {
          url: `http://127.0.0.1:${provider.port}/jwks`,
          timeoutMs: 300,
          refetchMinMs: 5_000,
          refreshMs: 60_000,
        },
      },
      { cacheSize: 0, now: () => now, registry },
    );
    const counts = async () => {
      const text = await registry.metrics();
      const value = (pattern: string) =>
        Number(new RegExp(`^${pattern} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
      return {
        malformed: value('edge_auth_jwks_fetch_failures_total\\{reason="malformed"\\}'),
        status: value('edge_auth_jwks_fetch_failures_total\\{reason="status"\\}'),
        timeout: value('edge_auth_jwks_fetch_failures_total\\{reason="timeout"\\}'),
        unreachable: value('edge_auth_jwks_fetch_failures_total\\{reason="unreachable"\\}'),
        refused: value("edge_auth_keys_unavailable_total"),
      };
    };
    const k1 = await token("k1");
    try {
      // Listed before anything happens: a dashboard sees 0, not no data.
      expect(await registry.metrics()).toContain("edge_auth_keys_unavailable_total 0");

      expect(await outcome(verifier.verify(k1))).toBe("auth_unavailable");
      expect(await counts()).toEqual({
        malformed: 1,
        status: 0,
        timeout: 0,
        unreachable: 0,
        refused: 1,
      });

      mode = "status-500";
      now += 5_001;
      expect(await outcome(verifier.verify(k1))).toBe("auth_unavailable");
      // At once again: refused without a fetch (held back), so no failure counted.
      expect(await outcome(verifier.verify(k1))).toBe("auth_unavailable");
      expect(await counts()).toEqual({
        malformed: 1,
        status: 1,
        timeout: 0,
        unreachable: 0,
        refused: 3,
      });

      mode = "hang";
      now += 5_001;
      expect(await outcome(verifier.verify(k1))).toBe("auth_unavailable");
      expect(await counts()).toEqual({
        malformed: 1,
        status: 1,
        timeout: 1,
        unreachable: 0,
        refused: 4,
      });

      // Keys at last: verified, nothing more counted.
      mode = "ok";
      now += 5_001;
      expect(await outcome(verifier.verify(k1))).toBe("ok");
      expect(await counts()).toEqual({
        malformed: 1,
        status: 1,
        timeout: 1,
        unreachable: 0,
        refused: 4,
      });

      // Gone, past the refresh age: the background refresh fails, the held key still verifies.
      provider.stop(true);
      now += 60_001;
      expect(await outcome(verifier.verify(k1))).toBe("ok");
      await waitUntil(async () => (await counts()).unreachable === 1);
      expect(await counts()).toEqual({
        malformed: 1,
        status: 1,
        timeout: 1,
        unreachable: 1,
        refused: 4,
      });
    } finally {
      provider.stop(true);
    }
  });
});

describe("a key the identity provider revokes (drops from its JWKS)", () => {
  async function waitForFetch(hits: number): Promise<void> {
    for (let i = 0; i < 100 && state.hits === hits; i++) await Bun.sleep(10);
  }

  test("tokens it signed, already verified and cached, are refused once a refresh drops it; others stay cached", async () => {
    state.mode = "ok";
    const kept = await addKey("kept");
    const revoked = await addKey("revoked");
    state.keys = [kept, revoked];
    let now = Date.now();
    const verifier = createTokenVerifier(
      { jwks: { url, timeoutMs: 1_000, refetchMinMs: 5_000, refreshMs: 60_000 } },
      { now: () => now },
    );
    const keptToken = await token("kept");
    const revokedToken = await token("revoked", "c9");
    expect(await outcome(verifier.verify(keptToken))).toBe("ok");
    expect(await outcome(verifier.verify(revokedToken))).toBe("ok");

    // Dropped from the JWKS, but not yet refreshed: the cache still answers.
    state.keys = [kept];
    expect(verifier.cached(revokedToken)?.sub).toBe("c9");

    // Past the refresh age, a cache hit starts the refresh (nothing else would reach the JWKS).
    now += 60_001;
    const hits = state.hits;
    verifier.cached(keptToken);
    await waitForFetch(hits);
    expect(state.hits).toBe(hits + 1);
    await Bun.sleep(20);

    expect(verifier.cached(revokedToken)).toBeUndefined();
    expect(await outcome(verifier.verify(revokedToken))).toBe("unauthenticated");
    expect(verifier.cached(keptToken)?.sub).toBe("c1");
    expect(await outcome(verifier.verify(keptToken))).toBe("ok");
  });

  test("a token without a key id is checked again when the set changes, and refused once its key is gone", async () => {
    state.mode = "ok";
    const { publicKey, privateKey } = await generateKeyPair("EdDSA");
    const noKid = { ...(await exportJWK(publicKey)), alg: "EdDSA" };
    const other = await addKey("other");
    state.keys = [noKid, other];
    let now = Date.now();
    const verifier = createTokenVerifier(
      { jwks: { url, timeoutMs: 1_000, refetchMinMs: 5_000, refreshMs: 60_000 } },
      { now: () => now },
    );
    const noKidToken = await new SignJWT({ role: "customer" })
      .setProtectedHeader({ alg: "EdDSA" })
      .setSubject("c7")
      .setExpirationTime("1h")
      .sign(privateKey);
    expect(await outcome(verifier.verify(noKidToken))).toBe("ok");
    expect(verifier.cached(noKidToken)?.sub).toBe("c7");

    state.keys = [other];
    now += 60_001;
    const hits = state.hits;
    verifier.cached(noKidToken);
    await waitForFetch(hits);
    await Bun.sleep(20);
    expect(verifier.cached(noKidToken)).toBeUndefined();
    expect(await outcome(verifier.verify(noKidToken))).toBe("unauthenticated");
  });
});

describe("sessions open with a token whose key the identity provider revokes", () => {
  test("a refresh that drops the key ends them, once; a failed refresh ends none; one opened after ends at once; without a key id, any change ends it", async () => {
    state.mode = "ok";
    const { publicKey, privateKey } = await generateKeyPair("EdDSA");
    const noKid = { ...(await exportJWK(publicKey)), alg: "EdDSA" };
    state.keys = [await addKey("s-revoked"), await addKey("s-kept"), noKid];
    // Real time: open sessions refresh the set on a timer of their own, every refreshMs.
    const verifier = createTokenVerifier({
      jwks: { url, timeoutMs: 1_000, refetchMinMs: 10, refreshMs: 50 },
    });
    const revoked = await verifier.verify(await token("s-revoked"));
    const kept = await verifier.verify(await token("s-kept"));
    const withoutKid = await verifier.verify(
      await new SignJWT({ role: "customer" })
        .setProtectedHeader({ alg: "EdDSA" })
        .setSubject("c8")
        .setExpirationTime("1h")
        .sign(privateKey),
    );
    const ended: string[] = [];
    const open = (name: string, key = revoked.key) => {
      if (!key) throw new Error(`${name}: verified without its key`);
      return verifier.whenRevoked(key, () => ended.push(name));
    };
    open("revoked-1");
    open("revoked-2");
    const closedBefore = open("revoked-closed");
    const keptOpen = open("kept", kept.key);
    open("no-kid", withoutKid.key);
    closedBefore();

    // The provider fails: its last good set stands, and every session with it.
    state.mode = "status-500";
    const hits = state.hits;
    await waitUntil(() => state.hits >= hits + 2, 5_000, "two refreshes");
    expect(ended).toEqual([]);

    state.mode = "ok";
    state.keys = state.keys.filter((key) => key.kid !== "s-revoked");
    await waitUntil(() => ended.length >= 3, 5_000, "the revoked sessions ended");
    expect(ended.sort()).toEqual(["no-kid", "revoked-1", "revoked-2"]);

    // Further refreshes end nothing more; a session opened with the revoked key now ends at once.
    const after = state.hits;
    await waitUntil(() => state.hits >= after + 2, 5_000, "two more refreshes");
    open("revoked-late");
    await Promise.resolve();
    expect(ended.sort()).toEqual(["no-kid", "revoked-1", "revoked-2", "revoked-late"]);
    keptOpen();
  });
});
