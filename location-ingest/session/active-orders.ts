import { orderEnded } from "../../core/order-status";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { ORDER_FIELDS, parseOrderRecord } from "../../core/redis/order-record";
import type { ActiveOrder } from "./geofence-tracker";

/**
 * A rider's active orders: the members of `rider:{r}:orders` whose record
 * still shows this rider on an order that has not ended. The gateway ends
 * an order and removes it from the set in two requests (the record and the
 * set live on different slots), so a crash between them leaves an ended
 * order in the set; its record may also have expired, or the order gone to
 * another rider. Such members are skipped (no position is published to
 * them) and removed from the set. Throws when Redis fails mid-read.
 */
export async function readActiveOrders(
  connection: RedisConnection,
  riderId: string,
): Promise<ActiveOrder[]> {
  const { client } = connection;
  const orderIds = await client.smembers(keys.riderOrders(riderId));
  if (orderIds.length === 0) return [];
  const values = await Promise.all(
    orderIds.map((orderId) => client.hmget(keys.order(orderId), ...ORDER_FIELDS)),
  );
  const active: ActiveOrder[] = [];
  const gone: string[] = [];
  for (const [index, orderId] of orderIds.entries()) {
    const record = parseOrderRecord(orderId, values[index] ?? []);
    if (!record || record.riderId !== riderId || orderEnded(record.status)) gone.push(orderId);
    else active.push({ orderId, pickup: record.pickup, dropoff: record.dropoff });
  }
  if (gone.length > 0) await client.srem(keys.riderOrders(riderId), ...gone);
  return active;
}
