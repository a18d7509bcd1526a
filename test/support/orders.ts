import { fromJsonString } from "@bufbuild/protobuf";
import type { Cluster, Redis } from "ioredis";
import { keys } from "../../core/redis/keys";
import { orderRecordFields } from "../../core/redis/order-record";
import { TrackingEventSchema } from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";

/** Writes an order's tracking record (as the gateway does) and, with a rider, makes it one of the rider's active orders. */
export async function seedOrder(
  db: Redis | Cluster,
  order: { orderId: string; customerId: string; riderId?: string; city?: string; status?: string },
): Promise<void> {
  const {
    orderId,
    customerId,
    riderId,
    city = "london",
    status = riderId ? "ASSIGNED" : "CONFIRMED",
  } = order;
  const record = orderRecordFields({
    orderId,
    customerId,
    ...(riderId ? { riderId } : {}),
    city,
    restaurantId: "rest-1",
    pickup: { lat: 51.5, lng: -0.12 },
    dropoff: { lat: 51.52, lng: -0.1 },
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
