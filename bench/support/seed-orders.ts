import { Redis } from "ioredis";
import { keys } from "../../core/redis/keys";
import { orderRecordFields } from "../../core/redis/order-record";

/**
 * Writes `count` tracking records `<orderPrefix><i>` in one pipeline; with a
 * rider prefix, order i is assigned (PICKED_UP) to rider `<riderPrefix><i>`
 * and is that rider's active order, otherwise it waits for a rider (CONFIRMED).
 */
export async function seedBenchOrders(
  url: string,
  count: number,
  prefixes: { orderPrefix: string; riderPrefix?: string },
): Promise<void> {
  const { orderPrefix, riderPrefix } = prefixes;
  const db = new Redis(url);
  const pipeline = db.pipeline();
  for (let i = 0; i < count; i++) {
    const orderId = `${orderPrefix}${i}`;
    const riderId = riderPrefix === undefined ? undefined : `${riderPrefix}${i}`;
    const record = orderRecordFields({
      orderId,
      customerId: `bench-customer-${i}`,
      ...(riderId ? { riderId } : {}),
      city: "london",
      restaurantId: "bench-restaurant",
      pickup: { lat: 51.5, lng: -0.12 },
      dropoff: { lat: 51.52, lng: -0.1 },
      status: riderId ? "PICKED_UP" : "CONFIRMED",
      version: riderId ? 4 : 1,
    });
    pipeline.hset(keys.order(orderId), record);
    if (riderId) pipeline.sadd(keys.riderOrders(riderId), orderId);
  }
  await pipeline.exec();
  db.disconnect();
}
