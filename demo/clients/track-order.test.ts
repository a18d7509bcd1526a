import { expect, test } from "bun:test";
import { positionEventJson } from "../../core/messages/tracking-events";
import { keys } from "../../core/redis/keys";
import type { TrackingEvent } from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { useGatewayAndTrackingNodes } from "../../test/support/edge-nodes";
import { seedOrder } from "../../test/support/orders";
import { SOME_POSITION } from "../../test/support/positions";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { trackOrder } from "./track-order";

const fixture = useGatewayAndTrackingNodes();

test("with JSON frames the example client reads them with the generated type too", async () => {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  const events: TrackingEvent[] = [];
  const tracker = await trackOrder({
    gatewayUrl: fixture.gateway.url,
    orderId,
    token: await testToken(customerId, "customer"),
    onEvent: (event) => events.push(event),
    frames: "json",
  });
  await waitUntil(() => events.length >= 1);
  const seq = 2n ** 63n + 5n;
  await fixture.db.publish(
    keys.orderTrack(orderId),
    positionEventJson(orderId, { ...SOME_POSITION, riderId, seq, receivedAtMs: Date.now() }),
  );
  await waitUntil(() => events.length >= 2);
  const position = events[1]?.event;
  expect(position?.case === "position" && [position.value.riderId, position.value.seq]).toEqual([
    riderId,
    seq,
  ]);
  tracker.close();
});

test("the example client finds the owner through the gateway, decodes protobuf frames, and follows a drain to the next node", async () => {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(fixture.db, { orderId, customerId, riderId: uniqueId("rider") });
  const events: TrackingEvent[] = [];
  const tracker = await trackOrder({
    gatewayUrl: fixture.gateway.url,
    orderId,
    token: await testToken(customerId, "customer"),
    onEvent: (event) => events.push(event),
    reconnectAfterMs: 50,
  });
  await waitUntil(() => events.length >= 1);
  expect(events[0]?.event.case === "status" && events[0].event.value.status).toBe("ASSIGNED");
  const owner = fixture.nodes.find((node) => node.app.ring.ownerOf(orderId)?.id === node.id);
  await owner?.stop();
  // Drained: `moved` to the other node, which sends the status again.
  await waitUntil(() => events.filter((e) => e.event.case === "status").length >= 2);
  expect(events.some((e) => e.event.case === "moved")).toBe(true);
  tracker.close();
});
