import { Hono } from "hono";
import type { Identity } from "../../core/auth/identity";
import { EdgeError } from "../../core/errors/edge-error";
import { isKeyPart, keys } from "../../core/redis/keys";
import { ORDER_FIELDS, type OrderRecord, parseOrderRecord } from "../../core/redis/order-record";
import type { RedisClient } from "../../core/redis/scripts";
import type { TrackingRing } from "../../core/tracking-ring/tracking-ring";
import type { GatewayEnv } from "../context";

/** The order's customer, its assigned rider, dispatchers and ops; others get 403. */
function assertMaySee(identity: Identity, order: OrderRecord): void {
  const allowed =
    identity.role === "dispatcher" ||
    identity.role === "ops" ||
    (identity.role === "customer" && identity.sub === order.customerId) ||
    (identity.role === "rider" && identity.sub === order.riderId);
  if (!allowed) throw new EdgeError("forbidden", "not allowed to see this order");
}

/**
 * `GET /v1/orders/:id/status` (the fast path: straight from the tracking
 * record in Redis) and `GET /v1/orders/:id/track` (the URL of the tracking
 * node that owns the order, from the same ring the nodes build).
 */
export function orderTrackingRoutes(options: { client: RedisClient; ring: TrackingRing }) {
  const { client, ring } = options;

  async function loadVisibleOrder(orderId: string, identity: Identity): Promise<OrderRecord> {
    if (!isKeyPart(orderId)) throw new EdgeError("bad_request", "invalid order id");
    const order = parseOrderRecord(
      orderId,
      await client.hmget(keys.order(orderId), ...ORDER_FIELDS),
    );
    if (!order) throw new EdgeError("not_found", "no such order");
    assertMaySee(identity, order);
    return order;
  }

  return new Hono<GatewayEnv>()
    .get("/v1/orders/:id/status", async (c) => {
      const order = await loadVisibleOrder(c.req.param("id"), c.get("identity"));
      return c.json({
        orderId: order.orderId,
        status: order.status,
        version: order.version,
        ...(order.riderId ? { riderId: order.riderId } : {}),
      });
    })
    .get("/v1/orders/:id/track", async (c) => {
      const order = await loadVisibleOrder(c.req.param("id"), c.get("identity"));
      const owner = ring.ownerOf(order.orderId);
      if (!owner) throw new EdgeError("unavailable", "no tracking node is available");
      return c.json({
        orderId: order.orderId,
        node: owner.id,
        url: `${owner.url}/v1/orders/${encodeURIComponent(order.orderId)}/track`,
      });
    });
}
