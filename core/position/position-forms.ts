import { toBinary } from "@bufbuild/protobuf";
import {
  type LocationRecord,
  LocationRecordSchema,
} from "../../proto/gen/delivery/tracking/v1/location_record_pb";
import type { RiderPosition } from "./rider-position";

/*
 * The forms a RiderPosition takes, each made by one encoder here, each a
 * message of the proto so any protobuf runtime reads it:
 * - stored, at `rider:{r}:pos`: the proto3 JSON mapping of LocationRecord
 *   (parsed back by parseStoredPosition);
 * - logged, to Kafka `rider-locations` or the Redis stream: LocationRecord bytes;
 * - published, on `track:{p<n>}:<o>`: the proto3 JSON mapping of a
 *   TrackingEvent with its `position` (core/messages/tracking-events.ts).
 * The JSON writers are hand-made (the reflective `toJsonString` costs
 * several µs per ping); position-forms.test.ts walks every field of each
 * schema with random values, so a field added to the proto and missed here
 * fails the suite.
 */

/** How long a last position outlives the rider's last ping (`rider:{r}:pos` EX). */
export const RIDER_POSITION_TTL_S = 86_400;

/** The `ping` object of the JSON forms: GeoPing's proto3 JSON (64-bit integers as strings). */
function geoPingJson(position: RiderPosition) {
  return {
    lat: position.lat,
    lng: position.lng,
    accuracyM: position.accuracyM,
    speedMps: position.speedMps,
    headingDeg: position.headingDeg,
    recordedAtMs: String(position.recordedAtMs),
    seq: position.seq.toString(),
  };
}

/**
 * `rider:{r}:pos`: LocationRecord as proto3 JSON (a live position, so
 * `backfill` is always false and left out). store-rider-positions.lua finds
 * its `"seq"` and then `"receivedAtMs"` strings by plain search: keep them
 * strings, and `receivedAtMs` after `ping`.
 */
export function encodeStoredPosition(position: RiderPosition): string {
  return JSON.stringify({
    riderId: position.riderId,
    city: position.city,
    ping: geoPingJson(position),
    receivedAtMs: String(position.receivedAtMs),
  });
}

/** Parses `rider:{r}:pos`; undefined when absent, damaged or in a form this code does not write. */
export function parseStoredPosition(raw: string | null): RiderPosition | undefined {
  if (!raw) return undefined;
  let value: {
    riderId?: unknown;
    city?: unknown;
    ping?: Record<string, unknown>;
    receivedAtMs?: unknown;
  };
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const ping = value?.ping;
  if (typeof value.riderId !== "string" || typeof value.city !== "string" || !ping)
    return undefined;
  const numbers = [ping.lat, ping.lng, ping.accuracyM, ping.speedMps, ping.headingDeg];
  if (!numbers.every((n) => typeof n === "number" && Number.isFinite(n))) return undefined;
  const recordedAtMs = msOf(ping.recordedAtMs);
  const receivedAtMs = msOf(value.receivedAtMs);
  if (recordedAtMs === undefined || receivedAtMs === undefined) return undefined;
  if (typeof ping.seq !== "string" || !UINT64.test(ping.seq)) return undefined;
  return {
    riderId: value.riderId,
    city: value.city,
    lat: ping.lat as number,
    lng: ping.lng as number,
    accuracyM: ping.accuracyM as number,
    speedMps: ping.speedMps as number,
    headingDeg: ping.headingDeg as number,
    recordedAtMs,
    seq: BigInt(ping.seq),
    receivedAtMs,
  };
}

const UINT64 = /^\d{1,20}$/;

/** A proto3 JSON int64 holding ms (a decimal string, or a number), as a safe integer. */
export function msOf(value: unknown): number | undefined {
  const ms = typeof value === "string" && /^-?\d{1,16}$/.test(value) ? Number(value) : value;
  return Number.isSafeInteger(ms) ? (ms as number) : undefined;
}

/**
 * The location log's record: LocationRecord bytes. The message is written as
 * a typed literal rather than through `create()`, which copies every field
 * into a new message and costs more than the encoding itself (about half
 * of this function's time per ping, bench/RESULTS.md "where a ping's bytes
 * go"); the types make a field added to the proto a compile error here.
 */
export function encodeLocationRecord(position: RiderPosition, backfill: boolean): Uint8Array {
  const record: LocationRecord = {
    $typeName: "delivery.tracking.v1.LocationRecord",
    riderId: position.riderId,
    city: position.city,
    ping: {
      $typeName: "delivery.tracking.v1.GeoPing",
      lat: position.lat,
      lng: position.lng,
      accuracyM: position.accuracyM,
      speedMps: position.speedMps,
      headingDeg: position.headingDeg,
      recordedAtMs: BigInt(position.recordedAtMs),
      seq: position.seq,
    },
    receivedAtMs: BigInt(position.receivedAtMs),
    backfill,
  };
  return toBinary(LocationRecordSchema, record);
}
