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

export type TrackingFrame = PositionFrame | StatusFrame | MovedFrame;

export function encodeTrackingFrame(frame: TrackingFrame): string {
  return JSON.stringify(frame);
}
