import type { Cluster, Redis } from "ioredis";
import { keys } from "../../core/redis/keys";

/** Writes an order's tracking record (as the gateway will) and, with a rider, makes it one of the rider's active orders. */
export async function seedOrder(
  db: Redis | Cluster,
  order: { orderId: string; customerId: string; riderId?: string; city?: string; status?: string },
): Promise<void> {
  const {
    orderId,
    customerId,
    riderId,
    city = "london",
    status = riderId ? "ASSIGNED" : "CONFIRMED",
  } = order;
  await db.hset(keys.order(orderId), {
    customerId,
    ...(riderId ? { riderId } : {}),
    city,
    restaurantId: "rest-1",
    pickupLat: 51.5,
    pickupLng: -0.12,
    dropoffLat: 51.52,
    dropoffLng: -0.1,
    status,
    version: riderId ? 2 : 1,
  });
  if (riderId) await db.sadd(keys.riderOrders(riderId), orderId);
}
