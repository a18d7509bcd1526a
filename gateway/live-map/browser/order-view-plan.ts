// What the one-order page can show from its two lookups, apart from the DOM
// so it can be tested: the status answer decides whether there is a page at
// all, the track answer only whether there is a map.

/** The page to show: the map and timeline, the timeline alone, or a refusal (from which lookup). */
export type OrderViewPlan =
  | { readonly show: "map" }
  | { readonly show: "status only" }
  | { readonly show: "refusal"; readonly from: "status" | "track" };

/**
 * A token that may read the order's status but not watch its courier (the
 * order's restaurant: the track lookup answers 403) still gets the timeline;
 * any other failed lookup is a refusal.
 */
export function planOrderView(statusCode: number, trackCode: number): OrderViewPlan {
  const ok = (code: number) => code >= 200 && code < 300;
  if (!ok(statusCode)) return { show: "refusal", from: "status" };
  if (ok(trackCode)) return { show: "map" };
  if (trackCode === 403) return { show: "status only" };
  return { show: "refusal", from: "track" };
}
