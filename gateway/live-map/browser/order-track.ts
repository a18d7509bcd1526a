// What the page knows about one followed order, and how a tracking event
// changes it. No DOM here.
import type {
  StopReason,
  TrackingClient,
  TrackingState,
} from "../../../clients/tracking-client/tracking-client";
import type { StatusPollState } from "./status-poll";
import type { MapEvent } from "./tracking-events";

export interface Point {
  lat: number;
  lng: number;
}

/** The order's steps in the order they happen (CANCELLED ends it early). */
export const ORDER_STEPS = ["CONFIRMED", "ASSIGNED", "READY", "PICKED_UP", "DELIVERED"] as const;

const PATH_POINTS = 600;

/** An order as the status and ops-view reads give it. */
export interface OrderSummary {
  orderId: string;
  status: string;
  version: number;
  riderId?: string;
  pickup?: Point;
  dropoff?: Point;
  /** The tracking node serving it, where the read says. */
  node?: { id: string; url: string };
}

export interface OrderTrack extends OrderSummary {
  /** The courier's positions, oldest first; kept across reconnects (?afterSeq= skips repeats). */
  path: Point[];
  lastFixAt?: number;
  frames: number;
  /** When this page first saw each status (ms, page clock). */
  statusSeenAt: Map<string, number>;
  fences: { fence: "left-pickup" | "entered-dropoff"; at: number }[];
  socket?: TrackingClient;
  /** The socket's state, or why it stopped. */
  socketState: TrackingState | StopReason;
  /** For a view with no socket (the order's restaurant): its status reads (status-poll.ts). */
  statusPoll?: { state: StatusPollState; dueAt?: number; checkedAt: number; reads: number };
}

export function createTrack(order: OrderSummary): OrderTrack {
  return {
    ...order,
    path: [],
    frames: 0,
    statusSeenAt: new Map([[order.status, Date.now()]]),
    fences: [],
    socketState: "looking up",
  };
}

/** Applies one event; a status older than the one known is ignored (polls and frames race). */
export function applyEvent(track: OrderTrack, event: MapEvent): void {
  track.frames += 1;
  if (event.kind === "position") {
    if (track.riderId && event.riderId !== track.riderId) return;
    track.riderId = event.riderId;
    track.path.push({ lat: event.lat, lng: event.lng });
    if (track.path.length > PATH_POINTS) track.path.shift();
    track.lastFixAt = event.at;
  } else if (event.kind === "status") {
    applyStatus(track, event.status, event.version);
    if (event.riderId) track.riderId = event.riderId;
  } else if (event.kind === "geofence") {
    if (!track.fences.some((known) => known.fence === event.fence)) track.fences.push(event);
  }
}

export function applyStatus(track: OrderTrack, status: string, version: number): void {
  if (version < track.version) return;
  track.status = status;
  track.version = version;
  if (!track.statusSeenAt.has(status)) track.statusSeenAt.set(status, Date.now());
}
