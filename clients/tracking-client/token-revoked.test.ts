import { afterAll, beforeAll, expect, test } from "bun:test";
import { positionEventJson } from "../../core/messages/tracking-events";
import { keys } from "../../core/redis/keys";
import type { TrackingEvent } from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { useGatewayAndTrackingNodes } from "../../test/support/edge-nodes";
import { startJwksServer } from "../../test/support/jwks-server";
import { seedOrder } from "../../test/support/orders";
import { SOME_POSITION } from "../../test/support/positions";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { followOrder, type TrackingClientEvents } from "./tracking-client";

// The identity provider revokes the key that signed a customer's token while
// the client follows an order: the tracking node closes 4401 `token revoked`
// at its next JWKS refresh, and the client renews its token as at exp. The
// JWKS is a real server this test controls; gateway and nodes verify with it.
const idp = startJwksServer();
const fixture = useGatewayAndTrackingNodes({}, idp.env);

beforeAll(async () => {
  await idp.publish("revoked");
  await idp.publish("kept");
});

afterAll(() => idp.stop());

/** A client following a new order with a token signed by the key to be revoked; `renew` is what its refreshToken gives. */
async function followed(renew: "none" | "new token" | "same token") {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  const seen = {
    events: [] as TrackingEvent[],
    stopped: [] as TrackingClientEvents["stopped"][],
    refreshed: 0,
  };
  const token = await idp.token("revoked", customerId, "customer");
  const refreshToken = async () => {
    seen.refreshed += 1;
    return renew === "new token" ? idp.token("kept", customerId, "customer") : token;
  };
  const client = followOrder({
    gatewayUrl: fixture.gateway.url,
    orderId,
    token,
    ...(renew === "none" ? {} : { refreshToken }),
    backoff: { firstMs: 50, maxMs: 200 },
  });
  client.on("event", (event) => seen.events.push(event));
  client.on("stopped", (stopped) => seen.stopped.push(stopped));
  const count = (type: TrackingEvent["event"]["case"]) =>
    seen.events.filter((event) => event.event.case === type).length;
  return { orderId, riderId, client, seen, count };
}

test("4401 `token revoked`: a new token from refreshToken and the order followed on; without refreshToken, or when it hands back the revoked token, a stop with reason `token revoked` (one refresh, not a loop)", async () => {
  const renewed = await followed("new token");
  const unrenewed = await followed("none");
  const handedBack = await followed("same token");
  const all = [renewed, unrenewed, handedBack];
  await waitUntil(() => all.every(({ count }) => count("status") === 1));

  idp.revoke("revoked");
  await waitUntil(
    () =>
      unrenewed.seen.stopped.length === 1 &&
      handedBack.seen.stopped.length === 1 &&
      renewed.count("status") === 2,
    10_000,
    "every client renewed or stopped",
  );
  expect(unrenewed.seen.stopped).toEqual([{ reason: "token revoked", code: 4401 }]);
  // The gateway refuses the token handed back: the client stops instead of asking again at once.
  expect([handedBack.seen.refreshed, handedBack.seen.stopped]).toEqual([
    1,
    [{ reason: "token revoked" }],
  ]);

  // The renewed client's socket is open again, on its new token: a position reaches it.
  const now = Date.now();
  await fixture.db.publish(
    keys.orderTrack(renewed.orderId),
    positionEventJson(renewed.orderId, {
      ...SOME_POSITION,
      riderId: renewed.riderId,
      seq: 1n,
      recordedAtMs: now,
      receivedAtMs: now,
    }),
  );
  await waitUntil(() => renewed.count("position") === 1);
  expect([renewed.seen.refreshed, renewed.seen.stopped, renewed.client.state]).toEqual([
    1,
    [],
    "open",
  ]);
  renewed.client.close();
}, 20_000);
