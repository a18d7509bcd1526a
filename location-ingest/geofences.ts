import type { Logger } from "pino";
import { distanceMeters, type LatLng } from "../core/geo";
import type { GeofenceName } from "../core/messages/tracking-events";
import type { RedisConnection } from "../core/redis/client";
import { recordGeofence } from "../core/redis/order-scripts";
import type { GeofencePolicy } from "./config";
import type { IngestMetrics } from "./metrics";
import type { ActiveOrder, RiderState } from "./rider-state";

export interface GeofenceCrossing {
  readonly orderId: string;
  readonly fence: GeofenceName;
}

interface InsideFences {
  pickup: boolean;
  dropoff: boolean;
}

/**
 * Tells, ping by ping, when a rider leaves an active order's pickup radius
 * or enters its drop-off radius. Inside means within the radius; outside
 * means past the radius plus a margin, so GPS jitter at the edge does not
 * flap. Whether the crossing matters (the order's status, once per order)
 * is decided in Redis by record-geofence.lua.
 */
export function createGeofenceTracker(policy: GeofencePolicy) {
  const insideByRider = new WeakMap<RiderState, Map<string, InsideFences>>();

  function update(inside: boolean, distance: number, radius: number): boolean {
    if (distance <= radius) return true;
    if (distance > radius + policy.exitMarginM) return false;
    return inside;
  }

  function crossings(order: ActiveOrder, was: InsideFences | undefined, at: LatLng) {
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
     * The crossings this fix makes for the rider's active orders. A fix less
     * precise than the exit margin cannot tell inside from outside: it is
     * skipped, so one drifting fix indoors never "leaves" the restaurant.
     */
    observe(state: RiderState, at: LatLng, accuracyM: number): GeofenceCrossing[] {
      if (state.orders.length === 0) {
        // The common case on the hot path: nothing to check, nothing to keep.
        insideByRider.delete(state);
        return [];
      }
      if (accuracyM > policy.exitMarginM) return [];
      let inside = insideByRider.get(state);
      if (!inside) {
        inside = new Map();
        insideByRider.set(state, inside);
      }
      const found: GeofenceCrossing[] = [];
      const active = new Set<string>();
      for (const order of state.orders) {
        active.add(order.orderId);
        const result = crossings(order, inside.get(order.orderId), at);
        inside.set(order.orderId, result.now);
        found.push(...result.found);
      }
      for (const orderId of inside.keys()) if (!active.has(orderId)) inside.delete(orderId);
      return found;
    },
  };
}

export type GeofenceTracker = ReturnType<typeof createGeofenceTracker>;

/** What the intake calls with each rider's newest stored position. */
export interface Geofences {
  observe(state: RiderState, at: LatLng, accuracyM: number): void;
}

/**
 * Turns crossings into order events through record-geofence.lua, off the
 * ping's path: the ack never waits for it. A failed call (Redis away) is
 * counted and not retried: the rider or the kitchen can still move the
 * order by hand, and the drop-off is re-tried by the next fix inside it
 * after a reconnect.
 */
export function createGeofences(options: {
  connection: RedisConnection;
  policy: GeofencePolicy;
  metrics: IngestMetrics;
  logger: Logger;
  now?: () => number;
}): Geofences {
  const { connection, policy, metrics, logger, now = Date.now } = options;
  const tracker = createGeofenceTracker(policy);
  return {
    observe(state, at, accuracyM) {
      for (const { orderId, fence } of tracker.observe(state, at, accuracyM)) {
        recordGeofence(connection, {
          orderId,
          riderId: state.riderId,
          fence,
          atMs: now(),
          autoStatus: policy.autoStatus,
        }).then(
          (outcome) => metrics.geofenceCrossings.inc({ fence, outcome }),
          (error: unknown) => {
            metrics.geofenceCrossings.inc({ fence, outcome: "failed" });
            logger.warn({ err: error, orderId, fence }, "geofence event not recorded");
          },
        );
      }
    },
  };
}
