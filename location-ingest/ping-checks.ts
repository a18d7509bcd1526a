import { distanceMeters, isValidLatLng } from "../core/geo";
import type { GeoPing } from "../proto/gen/delivery/tracking/v1/geo_pb";
import { DropReason } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import type { PingLimits } from "./config";

/** The last accepted ping of a rider, which the next one is checked against. */
export interface LastFix {
  readonly seq: bigint;
  readonly lat: number;
  readonly lng: number;
  readonly recordedAtMs: number;
}

export type PingKind = "live" | "backlog";

/**
 * Checks one ping against the limits and the rider's previous accepted fix.
 * Returns the drop reason, or undefined when the ping is acceptable.
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
  if (ping.seq <= last.seq) return DropReason.OUT_OF_ORDER;
  // A fix taken at (or before) the previous one's time still has to be
  // reachable: measure over at least one second so clock jitter is no teleport.
  const seconds = Math.max((recordedAtMs - last.recordedAtMs) / 1000, 1);
  if (distanceMeters(last, ping) / seconds > limits.maxSpeedMps) return DropReason.TELEPORT;
  return undefined;
}

/**
 * Speed and heading as stored and published: finite, heading in [0, 360),
 * and float32 values as the proto's fields hold them (so the JSON forms and
 * the binary ones carry the same number).
 */
export function sanitizeMotion(ping: GeoPing): { speedMps: number; headingDeg: number } {
  const speedMps = Number.isFinite(ping.speedMps) && ping.speedMps > 0 ? ping.speedMps : 0;
  const heading = Number.isFinite(ping.headingDeg) ? ping.headingDeg : 0;
  return {
    speedMps: Math.fround(speedMps),
    headingDeg: Math.fround(((heading % 360) + 360) % 360) % 360,
  };
}
