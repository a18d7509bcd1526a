import type { LatLng } from "../../core/geo";

/** Real city centres the demo's riders drive around. */
export const DEMO_CITIES: readonly { id: string; center: LatLng }[] = [
  { id: "london", center: { lat: 51.5074, lng: -0.1278 } },
  { id: "paris", center: { lat: 48.8566, lng: 2.3522 } },
  { id: "berlin", center: { lat: 52.52, lng: 13.405 } },
];
