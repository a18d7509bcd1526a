// The one place the live map reads tracking frames: each `tracking.v2.json`
// frame is a TrackingEvent in its proto3 JSON mapping, read with the
// generated type; everything else sees MapEvent.
import { fromJsonString } from "@bufbuild/protobuf";
import {
  GeofenceEvent_Fence,
  TrackingEventSchema,
} from "../../../proto/gen/delivery/tracking/v1/tracking_event_pb";

export type MapEvent =
  | { kind: "position"; riderId: string; lat: number; lng: number; seq: bigint; at: number }
  | { kind: "status"; status: string; version: number; riderId?: string }
  | { kind: "moved"; url: string }
  | { kind: "geofence"; fence: "left-pickup" | "entered-dropoff"; at: number };

/** One text frame as a MapEvent, or undefined for a kind the map does not draw. */
export function parseTrackingFrame(data: string): MapEvent | undefined {
  // Fields added to TrackingEvent later must not break a map built before them.
  const { event } = fromJsonString(TrackingEventSchema, data, { ignoreUnknownFields: true });
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
