/**
 * An order's statuses, in the order they happen: CONFIRMED → ASSIGNED →
 * READY → PICKED_UP → DELIVERED, and CONFIRMED or ASSIGNED → CANCELLED.
 * Which of them end the order, and during which a watcher sees the rider.
 */
export const ORDER_STATUSES = [
  "CONFIRMED",
  "ASSIGNED",
  "READY",
  "PICKED_UP",
  "DELIVERED",
  "CANCELLED",
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export function isOrderStatus(value: string): value is OrderStatus {
  return (ORDER_STATUSES as readonly string[]).includes(value);
}

/** DELIVERED or CANCELLED: nothing more happens to the order, and its rider is no longer its rider. */
export function orderEnded(status: string): boolean {
  return status === "DELIVERED" || status === "CANCELLED";
}

/** From ASSIGNED until the order ends: the order is its rider's, and only then do its watchers see the rider's position. */
export const RIDER_VISIBLE_STATUSES = ["ASSIGNED", "READY", "PICKED_UP"] as const;
export type RiderVisibleStatus = (typeof RIDER_VISIBLE_STATUSES)[number];

export function riderVisible(status: string): status is RiderVisibleStatus {
  return (RIDER_VISIBLE_STATUSES as readonly string[]).includes(status);
}
