import type { Identity } from "../core/auth/identity";
import { EdgeError } from "../core/errors/edge-error";
import { isOrderStatus, type OrderStatus } from "../core/order-status";
import type { OrderRecord } from "../core/redis/order-record";

/**
 * CONFIRMED → ASSIGNED → READY → PICKED_UP → DELIVERED, and CONFIRMED or
 * ASSIGNED → CANCELLED. Who may take each step; `ops` may take any step
 * this route allows. ASSIGNED happens only through an accepted offer.
 */
const STEPS: Record<
  Exclude<OrderStatus, "CONFIRMED" | "ASSIGNED">,
  { from: OrderStatus[]; mayStep: (who: Identity, order: OrderRecord) => boolean }
> = {
  READY: {
    from: ["ASSIGNED"],
    mayStep: (who, order) => who.role === "restaurant" && who.sub === order.restaurantId,
  },
  PICKED_UP: {
    from: ["READY"],
    mayStep: (who, order) => who.role === "rider" && who.sub === order.riderId,
  },
  DELIVERED: {
    from: ["PICKED_UP"],
    mayStep: (who, order) => who.role === "rider" && who.sub === order.riderId,
  },
  CANCELLED: { from: ["CONFIRMED", "ASSIGNED"], mayStep: (who) => who.role === "dispatcher" },
};

/** The statuses a move to `to` is legal from; 400 for an unknown status, 409 for ASSIGNED/CONFIRMED, 403 for the wrong actor. */
export function planStep(
  to: string,
  who: Identity,
  order: OrderRecord,
): { legalFrom: readonly OrderStatus[] } {
  if (!isOrderStatus(to)) throw new EdgeError("bad_request", `unknown status ${to}`);
  if (to === "ASSIGNED")
    throw new EdgeError("illegal_transition", "ASSIGNED happens only through an accepted offer");
  if (to === "CONFIRMED")
    throw new EdgeError("illegal_transition", "no step leads back to CONFIRMED");
  const step = STEPS[to as keyof typeof STEPS];
  if (who.role !== "ops" && !step.mayStep(who, order))
    throw new EdgeError("forbidden", `not allowed to set ${to}`);
  return { legalFrom: step.from };
}
