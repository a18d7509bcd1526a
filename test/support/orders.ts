import { fromJsonString } from "@bufbuild/protobuf";
import type { Cluster, Redis } from "ioredis";
import type { RiderInboxMessage } from "../../core/messages/rider-inbox";
import { keys } from "../../core/redis/keys";
import { orderRecordFields } from "../../core/redis/order-record";
import { TrackingEventSchema } from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import type { TestGateway } from "./gateway";
import { DROPOFF, PICKUP } from "./positions";
import { testToken } from "./tokens";
import type { TestWatcher } from "./tracking";

/** Writes an order's tracking record (as the gateway does) and, with a rider, makes it one of the rider's active orders. */
export async function seedOrder(
  db: Redis | Cluster,
  order: {
    orderId: string;
    customerId: string;
    riderId?: string;
    city?: string;
    status?: string;
    restaurantId?: string;
  },
): Promise<void> {
  const {
    orderId,
    customerId,
    riderId,
    city = "london",
    status = riderId ? "ASSIGNED" : "CONFIRMED",
    restaurantId = "rest-1",
  } = order;
  const record = orderRecordFields({
    orderId,
    customerId,
    ...(riderId ? { riderId } : {}),
    city,
    restaurantId,
    pickup: PICKUP,
    dropoff: DROPOFF,
    status,
    version: riderId ? 2 : 1,
  });
  await db.hset(keys.order(orderId), record);
  if (riderId) await db.sadd(keys.riderOrders(riderId), orderId);
}

/**
 * A published or outbox event as its JSON value, after checking that it is
 * the proto3 JSON mapping of a TrackingEvent (the strict parse refuses any
 * field the message does not have).
 */
/** An offer of `orderId` as the gateway pushes it on a rider's inbox (fencing token `<orderId>:1`, 30 s to accept). */
export function testOffer(orderId: string): RiderInboxMessage {
  return {
    type: "offer",
    orderId,
    fencingToken: `${orderId}:1`,
    restaurantId: "rest-1",
    pickup: PICKUP,
    dropoff: DROPOFF,
    expiresAtMs: Date.now() + 30_000,
  };
}

export function trackingEventJson(payload: string): Record<string, unknown> {
  fromJsonString(TrackingEventSchema, payload);
  return JSON.parse(payload);
}

/** One order's outbox events, oldest first (its partition's stream holds other orders' too). */
export async function orderOutboxEvents(
  db: Redis | Cluster,
  orderId: string,
): Promise<Record<string, unknown>[]> {
  const entries = await db.xrange(keys.orderOutbox(orderId), "-", "+");
  return entries
    .map(([, fields]) => trackingEventJson(fields[fields.indexOf("event") + 1] ?? "{}"))
    .filter((event) => event.orderId === orderId);
}

/**
 * An order taken to the customer's live map through the gateway, as the
 * apps do it: a dispatcher offers it to the rider, the rider accepts with
 * the fencing token its app was pushed (`offerReceived`, given what the
 * gateway answered the dispatcher), the customer looks up the tracking URL
 * and opens a watcher there. Throws on any step's unexpected status.
 */
export async function offerAcceptAndWatch(
  gateway: TestGateway,
  order: { orderId: string; riderId: string; customerId: string },
  offerReceived: (offered: { fencingToken: string }) => Promise<string>,
): Promise<TestWatcher> {
  const { orderId, riderId, customerId } = order;
  const offered = await gateway.call("/v1/dispatch/offers", {
    method: "POST",
    body: JSON.stringify({ orderId, riderId, city: "london", ttlMs: 30_000 }),
    as: { sub: "dispatcher-1", role: "dispatcher" },
  });
  if (offered.status !== 201) throw new Error(`offer: ${offered.status} ${await offered.text()}`);
  const token = await offerReceived((await offered.json()) as { fencingToken: string });
  const accepted = await gateway.call(`/v1/rides/${orderId}`, {
    method: "PATCH",
    body: JSON.stringify({ action: "accept", token }),
    as: { sub: riderId, role: "rider" },
  });
  if (accepted.status !== 200)
    throw new Error(`accept: ${accepted.status} ${await accepted.text()}`);
  const track = await gateway.call(`/v1/orders/${orderId}/track`, {
    as: { sub: customerId, role: "customer" },
  });
  if (track.status !== 200) throw new Error(`track: ${track.status} ${await track.text()}`);
  const { url } = (await track.json()) as { url: string };
  // Loaded here, not at the top: most users of this file never open a watcher.
  const { openWatcher } = await import("./tracking");
  return openWatcher(`${url}?access_token=${await testToken(customerId, "customer")}`);
}
