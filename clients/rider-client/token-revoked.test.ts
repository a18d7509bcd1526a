import { afterAll, beforeAll, expect, test } from "bun:test";
import { useIngestOnRedis } from "../../test/support/ingest";
import { startJwksServer } from "../../test/support/jwks-server";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { RiderClient } from "./rider-client";
import type { RiderClientEvents } from "./rider-client-api";
import { MemorySeqStore } from "./seq-store";

// The identity provider revokes the key that signed a rider's token while the
// client streams: the ingest ends the stream `token revoked: ...` at its next
// JWKS refresh, and the client renews its token as at exp. The JWKS is a real
// server this test controls; the ingest verifies with it.
const idp = startJwksServer();
const fixture = useIngestOnRedis({ ...idp.env, PING_INTERVAL_PARKED_MS: "1000" });

beforeAll(async () => {
  await idp.publish("revoked");
  await idp.publish("kept");
});

afterAll(() => idp.stop());

/** A rider streaming with a token signed by the key to be revoked; `renew` is what its refreshToken gives. */
async function streaming(
  renew: "none" | "new token" | "same token" | "revoked key again",
  backoff = { firstMs: 50, maxMs: 100 },
) {
  const riderId = uniqueId("rider");
  const token = await idp.token("revoked", riderId, "rider");
  const seen = { acks: 0, refreshed: 0, stopped: [] as RiderClientEvents["stopped"][] };
  const refreshToken = async () => {
    seen.refreshed += 1;
    if (renew === "new token") return idp.token("kept", riderId, "rider");
    // A provider still signing with the key it revoked: a new token each time, refused each time.
    return renew === "revoked key again" ? idp.token("revoked", riderId, "rider") : token;
  };
  const client = new RiderClient({
    ingest: fixture.ingest.grpc,
    token,
    ...(renew === "none" ? {} : { refreshToken }),
    seqStore: new MemorySeqStore(),
    locate: () => ({ lat: 51.5, lng: -0.12, accuracyM: 5, speedMps: 0, headingDeg: 0 }),
    firstIntervalMs: 200,
    backoff,
  });
  client.on("ack", () => {
    seen.acks += 1;
  });
  client.on("stopped", (stopped) => seen.stopped.push(stopped));
  void client.start();
  return { client, seen };
}

test("a stream ended `token revoked`: a new token from refreshToken and the stream again; without refreshToken, or when it hands back the revoked token, a stop with reason `token revoked` (one refresh, not a loop)", async () => {
  const renewed = await streaming("new token");
  const unrenewed = await streaming("none");
  const handedBack = await streaming("same token");
  await waitUntil(
    () => [renewed, unrenewed, handedBack].every(({ seen }) => seen.acks >= 1),
    10_000,
    "an ack each",
  );

  idp.revoke("revoked");
  await waitUntil(
    () =>
      unrenewed.seen.stopped.length === 1 &&
      handedBack.seen.stopped.length === 1 &&
      renewed.seen.refreshed === 1,
    10_000,
    "every client renewed or stopped",
  );
  const stops = [unrenewed, handedBack].map(({ seen }) => seen.stopped.map((s) => s.reason));
  expect(stops).toEqual([["token revoked"], ["token revoked"]]);
  expect(handedBack.seen.refreshed).toBe(1);

  // The renewed client streams on its new token: acked again.
  const acked = renewed.seen.acks;
  await waitUntil(() => renewed.seen.acks > acked, 10_000, "an ack on the new token");
  expect([renewed.seen.refreshed, renewed.seen.stopped, renewed.client.state]).toEqual([
    1,
    [],
    "streaming",
  ]);
  await renewed.client.close();
}, 30_000);

test("renewed tokens refused again (the provider still signs with the revoked key): the client keeps renewing, backing off, not as fast as the ingest answers", async () => {
  await idp.publish("revoked");
  // Delays after the first renewal: 200-400, 400-800, then 800-1,600 ms.
  const looping = await streaming("revoked key again", { firstMs: 400, maxMs: 1_600 });
  await waitUntil(() => looping.seen.acks >= 1, 10_000, "an ack");
  idp.revoke("revoked");
  await waitUntil(() => looping.seen.refreshed >= 1, 10_000, "the first renewal");
  await Bun.sleep(4_000);
  // Renewals at 0 and right after, then no sooner than 0.2, 0.6, 1.4, 2.2, 3.0 and 3.8 s:
  // eight at most in these 4 s. Without the backoff they came as fast as the ingest
  // refused them, each counted against the address's failed-auth limit.
  expect(looping.seen.refreshed).toBeGreaterThanOrEqual(3);
  expect(looping.seen.refreshed).toBeLessThanOrEqual(8);
  expect(looping.seen.stopped).toEqual([]);
  await looping.client.close();
}, 30_000);
