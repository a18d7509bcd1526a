import type { RiderInboxMessage } from "../../core/messages/rider-inbox";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { readOrderRecord } from "../../core/redis/order-record";

type Offer = Extract<RiderInboxMessage, { type: "offer" }>;

/**
 * The rider's pending offer as the gateway pushed it, rebuilt from Redis:
 * the rider lock (create-offer.lua) holds its fencing token `{orderId}:{seq}`
 * and lives as long as the offer, and the order's record holds the rest.
 * For a stream that may have missed the push (an inbox gap). Undefined when
 * the rider has no pending offer or its order no longer waits for a rider.
 * The expiry is the lock's, read now: within a few ms of the pushed one.
 */
export async function readPendingOffer(
  connection: RedisConnection,
  rider: { riderId: string; city: string },
  now: () => number,
): Promise<Offer | undefined> {
  const key = keys.offerForRider(rider.city, rider.riderId);
  const replies = await connection.client.multi().get(key).pttl(key).exec();
  const [fencingToken, ttlMs] = [replies?.[0]?.[1], replies?.[1]?.[1]];
  if (typeof fencingToken !== "string" || typeof ttlMs !== "number" || ttlMs <= 0) return undefined;
  const orderId = fencingToken.slice(0, fencingToken.lastIndexOf(":"));
  const order = await readOrderRecord(connection.client, orderId);
  if (!order || order.city !== rider.city || order.status !== "CONFIRMED") return undefined;
  const { restaurantId, pickup, dropoff } = order;
  return {
    type: "offer",
    orderId,
    fencingToken,
    restaurantId,
    pickup,
    dropoff,
    expiresAtMs: now() + ttlMs,
  };
}
