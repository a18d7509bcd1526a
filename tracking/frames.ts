import { fromJson, type JsonObject, toBinary } from "@bufbuild/protobuf";
import { FENCE_JSON_NAMES, type GeofenceName } from "../core/messages/tracking-events";
import { msOf } from "../core/position/position-forms";
import type { FrameFormat } from "../core/protocol/tracking-protocol";
import { TrackingEventSchema } from "../proto/gen/delivery/tracking/v1/tracking_event_pb";

/** What the node reads of an event to route it; the rest stays in its JSON. */
export type RoutedEvent =
  | {
      readonly kind: "position";
      readonly riderId: string;
      readonly seq: bigint;
      readonly receivedAtMs: number;
    }
  | {
      readonly kind: "status";
      readonly status: string;
      readonly version: number;
      readonly riderId?: string;
    }
  | { readonly kind: "moved" }
  | { readonly kind: "geofence"; readonly riderId: string };

/** One event, ready to send in any format; each encoding is made at most once. */
export interface OutgoingFrame {
  readonly event: RoutedEvent;
  /** Read back from Redis on connect, not fanned out live: its age is not fan-out lag. */
  readonly snapshot: boolean;
  /** The frame for a socket of `format`: the event's JSON as it came, or its one encoding. */
  data(format: FrameFormat): string | Uint8Array;
}

type EventJson = JsonObject & { orderId: string };

/**
 * An event of order `orderId` (a `TrackingEvent` as proto3 JSON, the payload
 * of `track:{p<n>}:<o>`, core/messages/tracking-events.ts) as a frame, or
 * undefined when it is malformed or names another order. Per event it costs
 * one JSON.parse and the checks below: the `tracking.v2.json` frame is the
 * payload itself, and the other formats are encoded only when a socket of
 * theirs asks.
 */
export function eventFrame(
  orderId: string,
  json: string,
  options: { snapshot?: boolean } = {},
): OutgoingFrame | undefined {
  let value: EventJson;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || value.orderId !== orderId) return undefined;
  const event = routedEvent(value);
  if (!event) return undefined;
  let binary: Uint8Array | undefined;
  let legacy: string | undefined;
  return {
    event,
    snapshot: options.snapshot ?? false,
    data(format) {
      if (format === "json") return json;
      if (format === "legacyJson") {
        legacy ??= legacyJson(value);
        return legacy;
      }
      binary ??= toBinary(
        TrackingEventSchema,
        // Fields a newer publisher added are dropped here, kept in the JSON.
        fromJson(TrackingEventSchema, value, { ignoreUnknownFields: true }),
      );
      return binary;
    },
  };
}

const UINT64 = /^\d{1,20}$/;
const UINT64_LIMIT = 2n ** 64n;

/** A proto3 JSON uint64 (a decimal string, or a safe integer) as a bigint. */
function uint64Of(value: unknown): bigint | undefined {
  if (typeof value === "number")
    return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
  if (typeof value !== "string" || !UINT64.test(value)) return undefined;
  const seq = BigInt(value);
  return seq < UINT64_LIMIT ? seq : undefined;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const isNumber = (value: unknown) => typeof value === "number" && Number.isFinite(value);
const isOptionalNumber = (value: unknown) => value === undefined || isNumber(value);
const isOptionalMs = (value: unknown) => value === undefined || msOf(value) !== undefined;

/**
 * The routing fields of the one event case the JSON carries, with every
 * field checked that an encoding reads, so encoding never throws later.
 */
function routedEvent(value: EventJson): RoutedEvent | undefined {
  const { position, status, moved, geofence } = value;
  const cases = [position, status, moved, geofence].filter((part) => part !== undefined);
  if (cases.length !== 1) return undefined;
  if (isObject(position)) {
    const { riderId, lat, lng } = position;
    const seq = uint64Of(position.seq ?? "0");
    const receivedAtMs = msOf(position.receivedAtMs ?? "0");
    if (typeof riderId !== "string" || !isNumber(lat) || !isNumber(lng)) return undefined;
    if (seq === undefined || receivedAtMs === undefined) return undefined;
    if (!isOptionalNumber(position.headingDeg) || !isOptionalNumber(position.speedMps))
      return undefined;
    if (!isOptionalMs(position.recordedAtMs)) return undefined;
    return { kind: "position", riderId, seq, receivedAtMs };
  }
  if (isObject(status)) {
    const version = msOf(status.version ?? "0");
    const riderId = status.riderId;
    if (typeof status.status !== "string" || version === undefined || version < 0) return undefined;
    if (riderId !== undefined && typeof riderId !== "string") return undefined;
    return { kind: "status", status: status.status, version, ...(riderId ? { riderId } : {}) };
  }
  if (isObject(moved)) return typeof moved.url === "string" ? { kind: "moved" } : undefined;
  if (isObject(geofence)) {
    const { riderId, fence } = geofence;
    if (typeof riderId !== "string" || !fenceName(fence) || !isOptionalMs(geofence.atMs))
      return undefined;
    return { kind: "geofence", riderId };
  }
  return undefined;
}

function fenceName(jsonName: unknown): GeofenceName | undefined {
  for (const [name, json] of Object.entries(FENCE_JSON_NAMES))
    if (json === jsonName) return name as GeofenceName;
  return undefined;
}

/** The event as a deprecated `tracking.v1.json` frame (core/protocol/tracking-protocol.ts). */
function legacyJson(value: EventJson): string {
  const { orderId, position, status, moved, geofence } = value as Record<string, JsonObject> & {
    orderId: string;
  };
  if (position)
    return JSON.stringify({
      type: "position",
      orderId,
      riderId: position.riderId,
      lat: position.lat,
      lng: position.lng,
      heading: position.headingDeg ?? 0,
      speed: position.speedMps ?? 0,
      recordedAt: msOf(position.recordedAtMs ?? 0),
      // v1 carried seq as a JSON number: exact only up to 2^53.
      seq: Number(position.seq),
      receivedAt: msOf(position.receivedAtMs ?? 0),
    });
  if (status)
    return JSON.stringify({
      type: "status",
      orderId,
      status: status.status,
      version: msOf(status.version ?? 0),
      ...(status.riderId ? { riderId: status.riderId } : {}),
    });
  if (moved) return JSON.stringify({ type: "moved", orderId, url: moved.url });
  return JSON.stringify({
    type: "geofence",
    orderId,
    riderId: geofence?.riderId,
    fence: fenceName(geofence?.fence),
    at: msOf(geofence?.atMs ?? 0),
  });
}
