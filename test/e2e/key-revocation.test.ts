import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseStoredPosition } from "../../core/position/position-forms";
import { CLOSE } from "../../core/protocol/tracking-protocol";
import { keys } from "../../core/redis/keys";
import { bearer, pingTrack, useIngestOnRedis } from "../support/ingest";
import { startJwksServer } from "../support/jwks-server";
import { seedOrder } from "../support/orders";
import { openPingStream, type PingStream } from "../support/ping-stream";
import { uniqueId } from "../support/tokens";
import { openWatcher, startTestTracking, type TestTrackingNode } from "../support/tracking";
import { waitUntil } from "../support/wait";

// A signing key the identity provider revokes (drops from its JWKS) ends the
// sessions already open with its tokens, on the ingest and on tracking, at the
// next refresh of the set; sessions under its other keys go on. The JWKS is a
// real server this test controls; the refresh is the tiers' own timer.
const idp = startJwksServer();
const fixture = useIngestOnRedis(idp.env, { stopFirst: async () => node?.stop() });
let node: TestTrackingNode;

beforeAll(async () => {
  await idp.publish("k1");
  await idp.publish("k2");
  await idp.publish("k3");
  node = await startTestTracking({ REDIS_URL: fixture.redis.url, ...idp.env });
});

afterAll(() => idp.stop());

/**
 * Under tokens of `kid`: two riders streaming, on gRPC (the lean path) and on
 * Connect (connect-node), and a customer watching the gRPC rider's order.
 */
async function sessionsUnder(kid: string) {
  const orderId = uniqueId(`order-${kid}`);
  const customerId = uniqueId(`cust-${kid}`);
  const riderId = uniqueId(`rider-${kid}`);
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  const stream = openPingStream(fixture.ingest.grpc, await idp.token(kid, riderId, "rider"));
  const connectRider = uniqueId(`rider-connect-${kid}`);
  const connect = openPingStream(
    fixture.ingest.connect,
    await idp.token(kid, connectRider, "rider"),
  );
  const watcher = await openWatcher(`${node.url}/v1/orders/${orderId}/track`, {
    headers: { authorization: `Bearer ${await idp.token(kid, customerId, "customer")}` },
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

    idp.revoke("k1");

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
          .uploadPings(requests(), bearer(await idp.token("k3", riderId, "rider")))
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
      await idp.token("k3", uniqueId("rider-k3"), "rider"),
    );
    await expectAck(stream, 1n);

    idp.revoke("k3");
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
