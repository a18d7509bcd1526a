import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import type { Role } from "../../core/auth/identity";
import { parseStoredPosition } from "../../core/position/position-forms";
import { CLOSE } from "../../core/protocol/tracking-protocol";
import { keys } from "../../core/redis/keys";
import { bearer, pingTrack, useIngestOnRedis } from "../support/ingest";
import { seedOrder } from "../support/orders";
import { openPingStream, type PingStream } from "../support/ping-stream";
import { uniqueId } from "../support/tokens";
import { openWatcher, startTestTracking, type TestTrackingNode } from "../support/tracking";
import { waitUntil } from "../support/wait";

// A signing key the identity provider revokes (drops from its JWKS) ends the
// sessions already open with its tokens, on the ingest and on tracking, at the
// next refresh of the set; sessions under its other keys go on. The JWKS is a
// real server this test controls; the refresh is the tiers' own timer.
const ISSUER = "https://id.test";
const AUDIENCE = "delivery-edge";
const published: { keys: JWK[] } = { keys: [] };
const signers = new Map<string, CryptoKey>();
const jwks = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: () => Response.json(published),
});
const AUTH_ENV = {
  JWT_JWKS_URL: `http://127.0.0.1:${jwks.port}/jwks.json`,
  JWT_ISSUER: ISSUER,
  JWT_AUDIENCE: AUDIENCE,
  JWT_JWKS_REFRESH_MS: "1000",
  JWT_JWKS_REFETCH_MIN_MS: "100",
};

const fixture = useIngestOnRedis(AUTH_ENV, { stopFirst: async () => node?.stop() });
let node: TestTrackingNode;

async function publishKey(kid: string): Promise<void> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  signers.set(kid, privateKey);
  published.keys.push({ ...(await exportJWK(publicKey)), kid, alg: "ES256" });
}

function token(kid: string, sub: string, role: Role): Promise<string> {
  return new SignJWT({ role, ...(role === "rider" ? { city: "london" } : {}) })
    .setProtectedHeader({ alg: "ES256", kid })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(signers.get(kid) as CryptoKey);
}

beforeAll(async () => {
  await publishKey("k1");
  await publishKey("k2");
  await publishKey("k3");
  node = await startTestTracking({ REDIS_URL: fixture.redis.url, ...AUTH_ENV });
});

afterAll(() => jwks.stop(true));

/**
 * Under tokens of `kid`: two riders streaming, on gRPC (the lean path) and on
 * Connect (connect-node), and a customer watching the gRPC rider's order.
 */
async function sessionsUnder(kid: string) {
  const orderId = uniqueId(`order-${kid}`);
  const customerId = uniqueId(`cust-${kid}`);
  const riderId = uniqueId(`rider-${kid}`);
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  const stream = openPingStream(fixture.ingest.grpc, await token(kid, riderId, "rider"));
  const connectRider = uniqueId(`rider-connect-${kid}`);
  const connect = openPingStream(fixture.ingest.connect, await token(kid, connectRider, "rider"));
  const watcher = await openWatcher(`${node.url}/v1/orders/${orderId}/track`, {
    headers: { authorization: `Bearer ${await token(kid, customerId, "customer")}` },
  });
  await watcher.waitForFrames(1); // the status snapshot
  await expectAck(stream, 1n);
  await expectAck(connect, 1n);
  return { stream, connect, watcher };
}

const storedSeq = async (riderId: string) =>
  parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.seq;

async function expectAck(stream: PingStream, seq: bigint): Promise<void> {
  stream.send(pingTrack(1, { startSeq: seq })[0] as never);
  expect((await stream.next()).event.case).toBe("ack");
}

describe("a signing key revoked from the JWKS", () => {
  test("ends the StreamPings calls (UNAUTHENTICATED) and tracking sockets (4401) opened with its tokens; those of the other key go on", async () => {
    const revoked = await sessionsUnder("k1");
    const kept = await sessionsUnder("k2");

    published.keys = published.keys.filter((key) => key.kid !== "k1");

    for (const stream of [revoked.stream, revoked.connect]) {
      const ended = (await stream.ended) as ConnectError;
      expect(ended).toBeInstanceOf(ConnectError);
      expect([ended.code, ended.rawMessage]).toEqual([
        Code.Unauthenticated,
        "token revoked: its signing key is no longer in the identity provider's key set",
      ]);
    }
    expect(await revoked.watcher.closed).toEqual({
      code: CLOSE.tokenExpired.code,
      reason: "token revoked",
    });

    // The other key's sessions saw refreshes go by (the revocation's among them) and go on:
    // the rider's next ping is acked and reaches the watcher as a position.
    await expectAck(kept.stream, 2n);
    await expectAck(kept.connect, 2n);
    const frames = await kept.watcher.waitForFrames(3);
    expect(frames.slice(1)).toMatchObject([
      { type: "position", seq: 1 },
      { type: "position", seq: 2 },
    ]);
    await kept.stream.finish();
    await kept.connect.finish();
    kept.watcher.close();
  }, 20_000);

  test("refuses an open UploadPings' next message (UNAUTHENTICATED, as StreamPings) on gRPC and Connect; the pings before it stay", async () => {
    const revoked = Promise.withResolvers<void>();
    const uploads = await Promise.all(
      [fixture.ingest.grpc, fixture.ingest.connect].map(async (client) => {
        const riderId = uniqueId("rider-upload-k3");
        async function* requests() {
          yield { pings: pingTrack(1) };
          // Held open across the revocation: the rest of the backlog would still move the live position.
          await revoked.promise;
          yield { pings: pingTrack(1, { startSeq: 2n }) };
        }
        const answer = client
          .uploadPings(requests(), bearer(await token("k3", riderId, "rider")))
          .catch((caught: unknown) => caught);
        return { riderId, answer };
      }),
    );
    for (const { riderId } of uploads)
      await waitUntil(
        async () => (await storedSeq(riderId)) === 1n,
        5_000,
        "the first message stored",
      );
    // The ingest's own StreamPings under k3 tells when its refresh has seen the revocation.
    const stream = openPingStream(
      fixture.ingest.grpc,
      await token("k3", uniqueId("rider-k3"), "rider"),
    );
    await expectAck(stream, 1n);

    published.keys = published.keys.filter((key) => key.kid !== "k3");
    await stream.ended;
    revoked.resolve();

    for (const { riderId, answer } of uploads) {
      const refused = (await answer) as ConnectError;
      expect(refused).toBeInstanceOf(ConnectError);
      expect([refused.code, refused.rawMessage]).toEqual([
        Code.Unauthenticated,
        "token revoked: its signing key is no longer in the identity provider's key set",
      ]);
      expect(await storedSeq(riderId)).toBe(1n);
    }
  }, 20_000);
});
