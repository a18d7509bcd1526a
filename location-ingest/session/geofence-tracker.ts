import { distanceMeters, type LatLng } from "../../core/geo";
import type { GeofenceName } from "../../core/messages/tracking-events";
import type { GeofencePolicy } from "../config";

/** An order the rider carries or fetches: where its fences are. */
export interface ActiveOrder {
  readonly orderId: string;
  readonly pickup: LatLng;
  readonly dropoff: LatLng;
}

export interface GeofenceCrossing {
  readonly orderId: string;
  readonly fence: GeofenceName;
}

interface InsideFences {
  pickup: boolean;
  dropoff: boolean;
}

/**
 * Tells, fix by fix, when one rider leaves an active order's pickup radius
 * or enters its drop-off radius. Inside means within the radius; outside
 * means past the radius plus a margin, so GPS jitter at the edge does not
 * flap. What the rider is inside of is this tracker's state (one per rider
 * session): a rider who leaves the restaurant while disconnected is not
 * seen leaving. Whether a crossing matters (the order's status, once per
 * order) is decided in Redis by record-geofence.lua.
 */
export function createGeofenceTracker(policy: GeofencePolicy) {
  const inside = new Map<string, InsideFences>();

  function update(was: boolean, distance: number, radius: number): boolean {
    if (distance <= radius) return true;
    if (distance > radius + policy.exitMarginM) return false;
    return was;
  }

  function cross(order: ActiveOrder, was: InsideFences | undefined, at: LatLng) {
    const now: InsideFences = {
      pickup: update(was?.pickup ?? false, distanceMeters(at, order.pickup), policy.pickupRadiusM),
      dropoff: update(
        was?.dropoff ?? false,
        distanceMeters(at, order.dropoff),
        policy.dropoffRadiusM,
      ),
    };
    const found: GeofenceCrossing[] = [];
    // Leaving is only seen by one who was seen inside; arriving counts from the first fix
    // (a rider reconnecting inside the drop-off still arrived; the script keeps it to once).
    if (was?.pickup && !now.pickup) found.push({ orderId: order.orderId, fence: "left_pickup" });
    if (!was?.dropoff && now.dropoff)
      found.push({ orderId: order.orderId, fence: "entered_dropoff" });
    return { now, found };
  }

  return {
    /**
     * The crossings a fix makes for the rider's active orders. A fix less
     * precise than the exit margin cannot tell inside from outside: it is
     * skipped, so one drifting fix indoors never "leaves" the restaurant.
     */
    observe(orders: readonly ActiveOrder[], at: LatLng, accuracyM: number): GeofenceCrossing[] {
      if (orders.length === 0) {
        // The common case on the hot path: nothing to check, nothing to keep.
        inside.clear();
        return [];
      }
      if (accuracyM > policy.exitMarginM) return [];
      const found: GeofenceCrossing[] = [];
      for (const order of orders) {
        const result = cross(order, inside.get(order.orderId), at);
        inside.set(order.orderId, result.now);
        found.push(...result.found);
      }
      if (inside.size > orders.length)
        for (const orderId of inside.keys())
          if (!orders.some((order) => order.orderId === orderId)) inside.delete(orderId);
      return found;
    },
  };
}

export type GeofenceTracker = ReturnType<typeof createGeofenceTracker>;
