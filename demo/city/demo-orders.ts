import type { Redis } from "ioredis";
import type { LatLng } from "../../core/geo";
import { keys } from "../../core/redis/keys";

/**
 * Until the gateway places orders (its issue), the demo writes a few
 * tracking records itself: each assigns one simulated rider, so its pings
 * reach anyone watching the order.
 */
export async function seedDemoOrders(
  db: Redis,
  orders: readonly {
    orderId: string;
    customerId: string;
    riderId: string;
    city: string;
    near: LatLng;
  }[],
): Promise<void> {
  for (const { orderId, customerId, riderId, city, near } of orders) {
    await db.hset(keys.order(orderId), {
      customerId,
      riderId,
      city,
      restaurantId: `${city}-demo-kitchen`,
      pickupLat: near.lat,
      pickupLng: near.lng,
      dropoffLat: near.lat + 0.01,
      dropoffLng: near.lng + 0.01,
      status: "PICKED_UP",
      version: 4,
    });
    await db.sadd(keys.riderOrders(riderId), orderId);
  }
}
