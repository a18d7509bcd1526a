import { riderVisible } from "../core/order-status";
import type { OrderRecord } from "../core/redis/order-record";

/** What a node knows of a watched order: enough to decide who sees what. */
export type OrderView = Pick<OrderRecord, "customerId" | "status" | "version" | "riderId">;

/**
 * This node's view of each order it has watchers for. A view starts from a
 * record read made after the order's subscription was confirmed, so every
 * later change reaches it as a status event; reads and events then move it
 * on, the newest version winning. It is the gate for the rider's frames:
 * the ingest publishes to every order in the rider's active set, which may
 * lag a status change by a moment, so the node itself withholds positions
 * for an order that is over, not yet assigned, or now another rider's.
 */
export function createOrderViews() {
  const views = new Map<string, OrderView>();

  return {
    get: (orderId: string): OrderView | undefined => views.get(orderId),

    /** A record read: starts or moves on the view; false when the node already knew newer. */
    observeRecord(orderId: string, record: OrderView): boolean {
      const known = views.get(orderId);
      if (known && known.version >= record.version) return false;
      views.set(orderId, record);
      return true;
    },

    /** A status event moves a view on; false without a view (its read will follow) or when not newer. */
    observeStatus(
      orderId: string,
      event: { status: string; version: number; riderId?: string },
    ): boolean {
      const known = views.get(orderId);
      if (!known || known.version >= event.version) return false;
      views.set(orderId, {
        customerId: known.customerId,
        status: event.status,
        version: event.version,
        ...(event.riderId ? { riderId: event.riderId } : {}),
      });
      return true;
    },

    /** Whether a frame about `riderId` (position, geofence) may reach the order's watchers. */
    showsRider(orderId: string, riderId: string): boolean {
      const view = views.get(orderId);
      return view !== undefined && view.riderId === riderId && riderVisible(view.status);
    },

    forget(orderId: string): void {
      views.delete(orderId);
    },
  };
}

export type OrderViews = ReturnType<typeof createOrderViews>;
