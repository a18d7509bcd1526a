import type { RiderPosition } from "../position/rider-position";

/*
 * The JSON of the tracking events: each one the proto3 JSON mapping of a
 * `TrackingEvent` (proto/delivery/tracking/v1/tracking_event.proto), so any
 * protobuf runtime parses it with the generated type. These are the
 * payloads on each order's `track:{p<n>}:<o>` channel, the frames of the
 * `tracking.v2.json` subprotocol (forwarded as published) and the entries of
 * the order outbox (Kafka `order-events`). The Lua scripts that publish
 * status and geofence events (assign-rider, transition-order,
 * record-geofence) write the same mapping. 64-bit integers are strings, as
 * the mapping has them.
 */

/** The geofences, by the names the ingest and record-geofence.lua use. */
export type GeofenceName = "left_pickup" | "entered_dropoff";

/** Each geofence's `GeofenceEvent.Fence` value name, as its JSON carries it. */
export const FENCE_JSON_NAMES: Readonly<Record<GeofenceName, string>> = {
  left_pickup: "FENCE_LEFT_PICKUP",
  entered_dropoff: "FENCE_ENTERED_DROPOFF",
};

/** `{orderId, position: PositionEvent}`: a rider's position for one of its orders. */
export function positionEventJson(orderId: string, position: RiderPosition): string {
  return JSON.stringify({
    orderId,
    position: {
      riderId: position.riderId,
      lat: position.lat,
      lng: position.lng,
      headingDeg: position.headingDeg,
      speedMps: position.speedMps,
      recordedAtMs: String(position.recordedAtMs),
      seq: position.seq.toString(),
      receivedAtMs: String(position.receivedAtMs),
    },
  });
}

/** `{orderId, status: StatusEvent}`; `riderId` only once the order has one. */
export function statusEventJson(
  orderId: string,
  status: { status: string; version: number; riderId?: string },
): string {
  return JSON.stringify({
    orderId,
    status: {
      status: status.status,
      version: String(status.version),
      ...(status.riderId ? { riderId: status.riderId } : {}),
    },
  });
}

/** `{orderId, moved: MovedEvent}`: the order is now served at `url`. */
export function movedEventJson(orderId: string, url: string): string {
  return JSON.stringify({ orderId, moved: { url } });
}
