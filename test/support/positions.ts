import { positionEventJson } from "../../core/messages/tracking-events";
import type { RiderPosition } from "../../core/position/rider-position";

/** A plausible position in London; tests override what they look at. */
export const SOME_POSITION: RiderPosition = {
  riderId: "r1",
  city: "london",
  lat: 51.5,
  lng: -0.12,
  accuracyM: 5,
  speedMps: 5,
  headingDeg: 90,
  recordedAtMs: 1_795_000_000_000,
  seq: 1n,
  receivedAtMs: 1_795_000_000_050,
};

/** A position event of `riderId` for `orderId`, as the ingest publishes it on `track:{p<n>}:<o>`. */
export function positionEvent(
  orderId: string,
  riderId: string,
  seq: bigint | number,
  at: number = Date.now(),
): string {
  return positionEventJson(orderId, {
    ...SOME_POSITION,
    riderId,
    seq: BigInt(seq),
    recordedAtMs: at,
    receivedAtMs: at,
  });
}
