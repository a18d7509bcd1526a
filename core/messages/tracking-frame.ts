/**
 * The JSON frames of the `tracking.v1.json` subprotocol. They are also the
 * payload on each order's `track:{o}` channel, so a tracking node forwards
 * the published bytes to JSON watchers without re-encoding them.
 */
export interface PositionFrame {
  type: "position";
  orderId: string;
  riderId: string;
  lat: number;
  lng: number;
  heading: number;
  speed: number;
  recordedAt: number;
  seq: number;
  /** When the ingest received the ping (server clock, ms): the lag origin. */
  receivedAt: number;
}

export interface StatusFrame {
  type: "status";
  orderId: string;
  status: string;
  version: number;
  riderId?: string;
}

export interface MovedFrame {
  type: "moved";
  orderId: string;
  url: string;
}

export type GeofenceName = "left_pickup" | "entered_dropoff";

/** The rider crossed one of the order's geofences (written by record-geofence.lua). */
export interface GeofenceFrame {
  type: "geofence";
  orderId: string;
  riderId: string;
  fence: GeofenceName;
  /** When the ingest saw the crossing (server clock, ms). */
  at: number;
}

export type TrackingFrame = PositionFrame | StatusFrame | MovedFrame | GeofenceFrame;

export function encodeTrackingFrame(frame: TrackingFrame): string {
  return JSON.stringify(frame);
}
