import { create, toBinary } from "@bufbuild/protobuf";
import type { TrackingFrame } from "../core/messages/tracking-frame";
import {
  GeofenceEvent_Fence,
  TrackingEventSchema,
} from "../proto/gen/delivery/tracking/v1/tracking_event_pb";

const PROTO_FENCES = {
  left_pickup: GeofenceEvent_Fence.LEFT_PICKUP,
  entered_dropoff: GeofenceEvent_Fence.ENTERED_DROPOFF,
} as const;

/** One event, ready to send in either format; each encoding is made at most once. */
export interface OutgoingFrame {
  readonly frame: TrackingFrame;
  readonly json: string;
  /** Read back from Redis on connect, not fanned out live: its age is not fan-out lag. */
  readonly snapshot: boolean;
  proto(): Uint8Array;
}

export function outgoingFrame(
  frame: TrackingFrame,
  options: { json?: string; snapshot?: boolean } = {},
): OutgoingFrame {
  const { json = JSON.stringify(frame), snapshot = false } = options;
  let binary: Uint8Array | undefined;
  return {
    frame,
    json,
    snapshot,
    proto: () => {
      binary ??= toBinary(TrackingEventSchema, toTrackingEvent(frame));
      return binary;
    },
  };
}

/** Parses a `track:{o}` payload (a tracking.v1.json frame); undefined when malformed. */
export function parseTrackingFrame(payload: string): TrackingFrame | undefined {
  let value: Partial<TrackingFrame> & Record<string, unknown>;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value?.orderId !== "string") return undefined;
  if (value.type === "position" && typeof value.lat === "number" && typeof value.lng === "number") {
    return value as TrackingFrame;
  }
  if (value.type === "status" && typeof value.status === "string") return value as TrackingFrame;
  if (value.type === "moved" && typeof value.url === "string") return value as TrackingFrame;
  if (
    value.type === "geofence" &&
    typeof value.fence === "string" &&
    Object.hasOwn(PROTO_FENCES, value.fence) &&
    typeof value.riderId === "string" &&
    Number.isSafeInteger(value.at)
  )
    return value as TrackingFrame;
  return undefined;
}

function toTrackingEvent(frame: TrackingFrame) {
  switch (frame.type) {
    case "position":
      return create(TrackingEventSchema, {
        orderId: frame.orderId,
        event: {
          case: "position",
          value: {
            riderId: frame.riderId,
            lat: frame.lat,
            lng: frame.lng,
            headingDeg: frame.heading,
            speedMps: frame.speed,
            recordedAtMs: BigInt(frame.recordedAt),
            seq: BigInt(frame.seq),
            receivedAtMs: BigInt(frame.receivedAt),
          },
        },
      });
    case "status":
      return create(TrackingEventSchema, {
        orderId: frame.orderId,
        event: {
          case: "status",
          value: {
            status: frame.status,
            version: BigInt(frame.version),
            riderId: frame.riderId ?? "",
          },
        },
      });
    case "moved":
      return create(TrackingEventSchema, {
        orderId: frame.orderId,
        event: { case: "moved", value: { url: frame.url } },
      });
    case "geofence":
      return create(TrackingEventSchema, {
        orderId: frame.orderId,
        event: {
          case: "geofence",
          value: {
            fence: PROTO_FENCES[frame.fence],
            riderId: frame.riderId,
            atMs: BigInt(frame.at),
          },
        },
      });
  }
}
