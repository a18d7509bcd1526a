import { distanceMeters, headingDelta, type LatLng } from "../../core/geo";
import type { IntervalPolicy } from "../config";

/** Where a rider is and how it moves (a RiderPosition is one). */
export interface MotionSample extends LatLng {
  readonly speedMps: number;
  readonly headingDeg: number;
}

/**
 * How long the rider app should wait before its next ping. Parked riders
 * barely move the map, so they ping rarely; a sharp turn makes the drawn path
 * wrong until the next fix, so it is wanted at once; near a pickup or
 * drop-off the customer is watching closely.
 */
export function nextIntervalMs(
  policy: IntervalPolicy,
  current: MotionSample,
  previous: MotionSample | undefined,
  stops: readonly LatLng[],
): number {
  const moving = current.speedMps >= policy.parkedBelowMps;
  if (
    moving &&
    previous &&
    previous.speedMps >= policy.parkedBelowMps &&
    headingDelta(current.headingDeg, previous.headingDeg) >= policy.sharpTurnDeg
  ) {
    return policy.turnMs;
  }
  if (stops.some((stop) => distanceMeters(stop, current) <= policy.nearStopM)) {
    return Math.min(policy.nearStopMs, moving ? policy.movingMs : policy.parkedMs);
  }
  return moving ? policy.movingMs : policy.parkedMs;
}
