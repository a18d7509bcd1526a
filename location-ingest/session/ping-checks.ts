import { distanceMeters, isValidLatLng } from "../../core/geo";
import { followsInOrder, type RiderPosition } from "../../core/position/rider-position";
import type { GeoPing } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import { DropReason } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { PingLimits } from "../config";

/** What a ping is checked against: the fix before it (the rider's, or the upload's). */
export type LastFix = Pick<RiderPosition, "seq" | "lat" | "lng" | "recordedAtMs" | "receivedAtMs">;

export type PingKind = "live" | "backlog";

/**
 * Checks one ping received at `nowMs` against the limits and the fix before
 * it. Returns the drop reason, or undefined when the ping is acceptable.
 *
 * Order: a live ping must follow the rider's last fix by the ordering rule
 * (core/position/rider-position.ts): a higher seq, or a last fix received
 * more than the live-age bound ago, so a lost or broken seq costs a rider at
 * most that long. Within one backlog upload seq must simply increase.
 */
export function checkPing(
  ping: GeoPing,
  last: LastFix | undefined,
  limits: PingLimits,
  kind: PingKind,
  nowMs: number,
): DropReason | undefined {
  if (!isValidLatLng(ping.lat, ping.lng)) return DropReason.INVALID_COORDINATES;
  const recordedAtMs = Number(ping.recordedAtMs);
  if (recordedAtMs > nowMs + limits.maxFutureSkewMs) return DropReason.FUTURE_TIMESTAMP;
  const maxAge = kind === "live" ? limits.maxLiveAgeMs : limits.maxBacklogAgeMs;
  if (recordedAtMs < nowMs - maxAge) return DropReason.STALE_TIMESTAMP;
  if (
    !Number.isFinite(ping.accuracyM) ||
    ping.accuracyM < 0 ||
    ping.accuracyM > limits.maxAccuracyM
  ) {
    return DropReason.POOR_ACCURACY;
  }
  if (last === undefined) return undefined;
  const inOrder =
    kind === "live"
      ? followsInOrder({ seq: ping.seq, receivedAtMs: nowMs }, last, limits.maxLiveAgeMs)
      : ping.seq > last.seq;
  if (!inOrder) return DropReason.OUT_OF_ORDER;
  // A fix taken at (or before) the previous one's time still has to be
  // reachable: measure over at least one second so clock jitter is no teleport.
  const seconds = Math.max((recordedAtMs - last.recordedAtMs) / 1000, 1);
  if (distanceMeters(last, ping) / seconds > limits.maxSpeedMps) return DropReason.TELEPORT;
  return undefined;
}

/**
 * The position a checked ping becomes: speed and heading finite, heading in
 * [0, 360), and the proto's float fields as float32 values (so the JSON and
 * the binary forms carry the same number).
 */
export function positionOf(
  rider: { riderId: string; city: string },
  ping: GeoPing,
  receivedAtMs: number,
): RiderPosition {
  const speedMps = Number.isFinite(ping.speedMps) && ping.speedMps > 0 ? ping.speedMps : 0;
  const heading = Number.isFinite(ping.headingDeg) ? ping.headingDeg : 0;
  return {
    riderId: rider.riderId,
    city: rider.city,
    lat: ping.lat,
    lng: ping.lng,
    accuracyM: Math.fround(ping.accuracyM),
    speedMps: Math.fround(speedMps),
    headingDeg: Math.fround(((heading % 360) + 360) % 360) % 360,
    recordedAtMs: Number(ping.recordedAtMs),
    seq: ping.seq,
    receivedAtMs,
  };
}
