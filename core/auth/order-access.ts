import { EdgeError } from "../errors/edge-error";
import type { OrderRecord } from "../redis/order-record";
import type { Identity } from "./identity";

/** How a caller stands to an order: its customer, assigned rider or restaurant, or staff (dispatch, ops). */
export type OrderRelation = "customer" | "rider" | "restaurant" | "staff";

export type OrderParties = Pick<OrderRecord, "customerId" | "riderId"> &
  Partial<Pick<OrderRecord, "restaurantId">>;

export function relationTo(identity: Identity, order: OrderParties): OrderRelation | undefined {
  switch (identity.role) {
    case "dispatcher":
    case "ops":
      return "staff";
    case "customer":
      return identity.sub === order.customerId ? "customer" : undefined;
    case "rider":
      return identity.sub === order.riderId ? "rider" : undefined;
    case "restaurant":
      return identity.sub === order.restaurantId ? "restaurant" : undefined;
  }
}

/**
 * The one answer for an order that is not there: the same code, message and
 * headers whether it never existed, its record expired, or it is someone
 * else's (see requireRelation).
 */
export const orderNotFound = () => new EdgeError("not_found", "no such order");

/**
 * The caller's relation to the order, or the not-found answer when it has
 * none: another customer's order must look exactly like a missing one, or
 * any token could probe which order ids exist (ids are in URLs, support
 * tickets, screenshots). A 403 is only for callers who know the order and
 * may not take this action on it.
 */
export function requireRelation(identity: Identity, order: OrderParties): OrderRelation {
  const relation = relationTo(identity, order);
  if (relation === undefined) throw orderNotFound();
  return relation;
}

/**
 * Who may watch the order's live tracking (its rider's position): its
 * customer, its assigned rider (now) and staff. A restaurant follows the
 * order's status, never the rider's position (the contract's watchers; a
 * kitchen learns of the pickup from PICKED_UP). The gateway's track lookup
 * and the tracking node's handshake both ask this, so no caller is handed a
 * URL the node then refuses.
 */
export function mayWatch(identity: Identity, order: OrderParties): boolean {
  const relation = relationTo(identity, order);
  return relation !== undefined && relation !== "restaurant";
}

/** Unrelated callers get the missing order's 404 (requireRelation); the order's restaurant a 403. */
export function requireWatcher(identity: Identity, order: OrderParties): void {
  if (requireRelation(identity, order) === "restaurant")
    throw new EdgeError("forbidden", "restaurants follow the order's status, not its rider");
}
