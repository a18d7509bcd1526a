const EARTH_RADIUS_M = 6_371_008.8;
const RAD = Math.PI / 180;

export interface LatLng {
  readonly lat: number;
  readonly lng: number;
}

/** Redis GEO (web-mercator) cannot index latitudes beyond this. */
export const MAX_GEO_LATITUDE = 85.05112878;

/** Finite and storable in a Redis GEO set (so not within ~550 km of a pole). */
export function isValidLatLng(lat: number, lng: number): boolean {
  return (
    Number.isFinite(lat) &&
    Number.isFinite(lng) &&
    Math.abs(lat) <= MAX_GEO_LATITUDE &&
    Math.abs(lng) <= 180
  );
}

/** Great-circle distance in metres (haversine; good to ~0.5% at city scale). */
export function distanceMeters(a: LatLng, b: LatLng): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLng = (b.lng - a.lng) * RAD;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Smallest angle between two headings in degrees (0..180). */
export function headingDelta(a: number, b: number): number {
  const d = Math.abs((((a - b) % 360) + 360) % 360);
  return d > 180 ? 360 - d : d;
}
