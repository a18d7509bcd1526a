import type { LatLng } from "../../core/geo";
import { distanceMeters } from "../../core/geo";

/** Blocks are ~150 m; the grid spans ~3 km each way from the centre. */
const BLOCK_M = 150;
const HALF_BLOCKS = 20;
const METERS_PER_DEG_LAT = 111_320;

export type Random = () => number;

/** A street corner `(x, y)` blocks east and north of the centre. */
function corner(center: LatLng, x: number, y: number): LatLng {
  const metersPerDegLng = METERS_PER_DEG_LAT * Math.cos((center.lat * Math.PI) / 180);
  return {
    lat: center.lat + (y * BLOCK_M) / METERS_PER_DEG_LAT,
    lng: center.lng + (x * BLOCK_M) / metersPerDegLng,
  };
}

const randomBlock = (random: Random) => Math.floor(random() * (2 * HALF_BLOCKS + 1)) - HALF_BLOCKS;

export function randomCorner(center: LatLng, random: Random): LatLng {
  return corner(center, randomBlock(random), randomBlock(random));
}

/** An L-shaped route along the grid from one corner to a random other one. */
export function randomRoute(center: LatLng, from: LatLng, random: Random): LatLng[] {
  return routeTo(from, randomCorner(center, random), random);
}

/** An L-shaped route from `from` to `to`: one street east-west, one north-south. */
export function routeTo(from: LatLng, to: LatLng, random: Random): LatLng[] {
  const turn = random() < 0.5 ? { lat: from.lat, lng: to.lng } : { lat: to.lat, lng: from.lng };
  return [from, turn, to];
}

/** Where a rider is after `meters` along `route`, and the heading there. */
export function along(
  route: readonly LatLng[],
  meters: number,
): { at: LatLng; headingDeg: number; done: boolean } {
  let left = meters;
  for (let i = 1; i < route.length; i++) {
    const a = route[i - 1] as LatLng;
    const b = route[i] as LatLng;
    const leg = distanceMeters(a, b);
    if (left <= leg && leg > 0) {
      const f = left / leg;
      const at = { lat: a.lat + (b.lat - a.lat) * f, lng: a.lng + (b.lng - a.lng) * f };
      return { at, headingDeg: bearing(a, b), done: false };
    }
    left -= leg;
  }
  const end = route[route.length - 1] as LatLng;
  return { at: end, headingDeg: 0, done: true };
}

function bearing(a: LatLng, b: LatLng): number {
  const toRad = Math.PI / 180;
  const y = Math.sin((b.lng - a.lng) * toRad) * Math.cos(b.lat * toRad);
  const x =
    Math.cos(a.lat * toRad) * Math.sin(b.lat * toRad) -
    Math.sin(a.lat * toRad) * Math.cos(b.lat * toRad) * Math.cos((b.lng - a.lng) * toRad);
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}
