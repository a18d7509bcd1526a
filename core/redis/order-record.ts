import type { LatLng } from "../geo";
import { notReplicated } from "./acked-writes";
import type { RedisConnection } from "./client";
import { keys } from "./keys";

/**
 * The fields of an order's tracking record (`order:{p<n>}:<o>` HASH). The gateway
 * writes it from the order service's answer; the ingest and tracking tier
 * read it.
 */
export const ORDER_FIELDS = [
  "customerId",
  "riderId",
  "city",
  "restaurantId",
  "pickupLat",
  "pickupLng",
  "dropoffLat",
  "dropoffLng",
  "status",
  "version",
] as const;

export interface OrderRecord {
  readonly orderId: string;
  readonly customerId: string;
  readonly riderId?: string;
  readonly city: string;
  readonly restaurantId: string;
  readonly pickup: LatLng;
  readonly dropoff: LatLng;
  readonly status: string;
  readonly version: number;
}

/** Parses the values of HMGET order:{p<n>}:<o> ...ORDER_FIELDS; undefined when absent or damaged. */
export function parseOrderRecord(
  orderId: string,
  values: readonly (string | null)[],
): OrderRecord | undefined {
  const [customerId, riderId, city, restaurantId, pLat, pLng, dLat, dLng, status, version] = values;
  if (!customerId || !city || !status || !restaurantId) return undefined;
  const pickup = { lat: Number(pLat), lng: Number(pLng) };
  const dropoff = { lat: Number(dLat), lng: Number(dLng) };
  if (![pickup.lat, pickup.lng, dropoff.lat, dropoff.lng].every(Number.isFinite)) return undefined;
  return {
    orderId,
    customerId,
    ...(riderId ? { riderId } : {}),
    city,
    restaurantId,
    pickup,
    dropoff,
    status,
    version: Number(version ?? 0),
  };
}

/** Reads an order's tracking record; undefined when absent (expired) or damaged. */
export async function readOrderRecord(
  client: RedisConnection["client"],
  orderId: string,
): Promise<OrderRecord | undefined> {
  return parseOrderRecord(orderId, await client.hmget(keys.order(orderId), ...ORDER_FIELDS));
}

/** The HSET fields for a tracking record (the inverse of parseOrderRecord). */
export function orderRecordFields(
  order: OrderRecord,
): Record<(typeof ORDER_FIELDS)[number], string | number> {
  return {
    customerId: order.customerId,
    riderId: order.riderId ?? "",
    city: order.city,
    restaurantId: order.restaurantId,
    pickupLat: order.pickup.lat,
    pickupLng: order.pickup.lng,
    dropoffLat: order.dropoff.lat,
    dropoffLng: order.dropoff.lng,
    status: order.status,
    version: order.version,
  };
}

/**
 * create-order-record.lua: writes the record unless one exists (a retried
 * create gets the same order back and must not reset its progress); resolves
 * once the connection's required replicas have it.
 */
export async function createOrderRecord(
  connection: RedisConnection,
  order: OrderRecord,
): Promise<boolean> {
  const fields = Object.entries(orderRecordFields(order)).flat();
  const key = keys.order(order.orderId);
  const { result, replicated } = await connection.acked.run(key, (target) =>
    target.createOrderRecord(key, ...fields),
  );
  // "exists" too: a retry after an unconfirmed create must not answer before a replica has it.
  if (!replicated) throw notReplicated();
  return result === "created";
}
