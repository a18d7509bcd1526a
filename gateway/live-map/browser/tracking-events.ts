// The one place the live map reads tracking frames: everything else sees
// MapEvent. (When the frames become the proto3 JSON mapping of
// TrackingEvent, only this file changes.)
import type { TrackingFrame } from "../../../core/messages/tracking-frame";

export type MapEvent =
  | { kind: "position"; riderId: string; lat: number; lng: number; seq: number; at: number }
  | { kind: "status"; status: string; version: number; riderId?: string }
  | { kind: "moved"; url: string }
  | { kind: "geofence"; fence: "left-pickup" | "entered-dropoff"; at: number };

/** One `tracking.v1.json` text frame as a MapEvent, or undefined for a kind the map does not draw. */
export function parseTrackingFrame(data: string): MapEvent | undefined {
  const frame = JSON.parse(data) as TrackingFrame;
  switch (frame.type) {
    case "position":
      return {
        kind: "position",
        riderId: frame.riderId,
        lat: frame.lat,
        lng: frame.lng,
        seq: frame.seq,
        at: frame.recordedAt,
      };
    case "status":
      return {
        kind: "status",
        status: frame.status,
        version: frame.version,
        ...(frame.riderId ? { riderId: frame.riderId } : {}),
      };
    case "moved":
      return { kind: "moved", url: frame.url };
    case "geofence":
      return {
        kind: "geofence",
        fence: frame.fence === "left_pickup" ? "left-pickup" : "entered-dropoff",
        at: frame.at,
      };
    default:
      return undefined;
  }
}
