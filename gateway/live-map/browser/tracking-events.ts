// What the live map draws of a TrackingEvent (the tracking client parses
// the frames with the generated type); everything else sees MapEvent.
import {
  GeofenceEvent_Fence,
  type TrackingEvent,
} from "../../../proto/gen/delivery/tracking/v1/tracking_event_pb";

export type MapEvent =
  | { kind: "position"; riderId: string; lat: number; lng: number; seq: bigint; at: number }
  | { kind: "status"; status: string; version: number; riderId?: string }
  | { kind: "moved"; url: string }
  | { kind: "geofence"; fence: "left-pickup" | "entered-dropoff"; at: number };

/** One event as a MapEvent, or undefined for a kind the map does not draw. */
export function mapEventOf({ event }: TrackingEvent): MapEvent | undefined {
  switch (event.case) {
    case "position":
      return {
        kind: "position",
        riderId: event.value.riderId,
        lat: event.value.lat,
        lng: event.value.lng,
        seq: event.value.seq,
        at: Number(event.value.recordedAtMs),
      };
    case "status":
      return {
        kind: "status",
        status: event.value.status,
        version: Number(event.value.version),
        ...(event.value.riderId ? { riderId: event.value.riderId } : {}),
      };
    case "moved":
      return { kind: "moved", url: event.value.url };
    case "geofence":
      if (event.value.fence === GeofenceEvent_Fence.UNSPECIFIED) return undefined;
      return {
        kind: "geofence",
        fence:
          event.value.fence === GeofenceEvent_Fence.LEFT_PICKUP ? "left-pickup" : "entered-dropoff",
        at: Number(event.value.atMs),
      };
    default:
      return undefined;
  }
}
