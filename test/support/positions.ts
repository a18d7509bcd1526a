import type { LatLng } from "../../core/geo";
import { positionEventJson } from "../../core/messages/tracking-events";
import type { RiderPosition } from "../../core/position/rider-position";

/** The pickup and drop-off every test order and offer uses (London, about 2.7 km apart). */
export const PICKUP: LatLng = { lat: 51.5, lng: -0.12 };
export const DROPOFF: LatLng = { lat: 51.52, lng: -0.1 };

const METERS_PER_DEG_LAT = 111_320;

/** The point `meters` due north of `from`. */
export function north(from: LatLng, meters: number): LatLng {
  return { lat: from.lat + meters / METERS_PER_DEG_LAT, lng: from.lng };
}

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
