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

/** From ASSIGNED until the order ends: the only time its watchers see the rider's position. */
export function riderVisible(status: string): boolean {
  return status === "ASSIGNED" || status === "READY" || status === "PICKED_UP";
}
