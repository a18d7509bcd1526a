import { type Context, Hono } from "hono";
import type { Identity } from "../../core/auth/identity";
import { orderNotFound, requireRelation, requireWatcher } from "../../core/auth/order-access";
import { EdgeError } from "../../core/errors/edge-error";
import { encodeRiderInboxMessage } from "../../core/messages/rider-inbox";
import { isOrderStatus, type OrderStatus, orderEnded } from "../../core/order-status";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { type OrderRecord, readOrderRecord } from "../../core/redis/order-record";
import { transitionOrder } from "../../core/redis/order-scripts";
import type { TrackingRing } from "../../core/tracking-ring/tracking-ring";
import { mountRoute } from "../api/api-router";
import { changeStatusRoute, orderStatusRoute, orderTrackRoute } from "../api/order-api";
import type { GatewayEnv } from "../context";
import { requestLogger } from "../middleware/observe-requests";
import { planStep } from "../order-state-machine";

const STATUS_READ_PATH = /^\/v1\/orders\/[^/]+\/status$/;

/**
 * `GET /v1/orders/:id/status`: a read only, so its record read may go to Redis
 * with the rate limit's count (the rate limit's `readAhead`).
 */
export const isStatusRead = (c: Context<GatewayEnv>): boolean =>
  c.req.method === "GET" && STATUS_READ_PATH.test(c.req.path);

/**
 * `GET /v1/orders/:id/status` (the fast path: straight from the tracking
 * record in Redis; never the rider's position), `POST /v1/orders/:id/status`
 * (a compare-and-set step of the state machine, with its status event; a
 * step that ends the order starts the record's `orderEndedTtlMs` and takes
 * the order out of the rider's active set) and `GET /v1/orders/:id/track`
 * (the URL of the tracking node that owns the order, for those the node lets
 * watch: the order's restaurant gets 403, as there; from the same ring the
 * nodes build, read for the tick now running when its timer is late).
 */
export function orderTrackingRoutes(options: {
  connection: RedisConnection;
  ring: TrackingRing;
  orderEndedTtlMs: number;
}) {
  const { connection, ring, orderEndedTtlMs } = options;
  const { client } = connection;

  /** The order is over: out of the rider's active set, and the rider's ingest node told. */
  async function endRiderOrder(riderId: string, orderId: string): Promise<void> {
    await client.srem(keys.riderOrders(riderId), orderId);
    await client[connection.publishCommand](
      keys.riderInbox(riderId),
      encodeRiderInboxMessage({ type: "orders-changed" }),
    );
  }

  async function loadVisibleOrder(
    orderId: string,
    identity: Identity,
  ): Promise<OrderRecord & { status: OrderStatus }> {
    const order = await readOrderRecord(client, orderId);
    // The order's customer, assigned rider and restaurant, and staff; to anyone else it is not there.
    if (!order) throw orderNotFound();
    requireRelation(identity, order);
    const { status } = order;
    // Only the gateway's scripts write statuses; another one is a damaged record, not an answer.
    if (!isOrderStatus(status))
      throw new EdgeError("internal", `order record with status ${status}`);
    return { ...order, status };
  }

  const app = new Hono<GatewayEnv>();
  mountRoute(app, orderStatusRoute, async (c) => {
    // Read with the rate limit's count (isStatusRead: one round trip); answered once admitted.
    const reading = loadVisibleOrder(c.req.valid("param").id, c.get("identity"));
    reading.catch(() => undefined);
    await c.get("admitted");
    const order = await reading;
    return c.json(
      {
        orderId: order.orderId,
        status: order.status,
        version: order.version,
        ...(order.riderId ? { riderId: order.riderId } : {}),
        // Where the food comes from and goes to: what a customer's map draws.
        pickup: order.pickup,
        dropoff: order.dropoff,
      },
      200,
    );
  });
  mountRoute(app, changeStatusRoute, async (c) => {
    const orderId = c.req.valid("param").id;
    const { to, expectedVersion } = c.req.valid("json");
    const order = await readOrderRecord(client, orderId);
    if (!order) throw orderNotFound();
    // Unrelated callers first: a step's 403 or 409 would tell them the order exists.
    requireRelation(c.get("identity"), order);
    const { legalFrom } = planStep(to, c.get("identity"), order);
    const ends = orderEnded(to);
    const { version, riderId } = await transitionOrder(connection, {
      orderId,
      expectedVersion,
      to,
      legalFrom,
      ...(ends ? { expireAfterMs: orderEndedTtlMs } : {}),
    });
    // The change is made (and on its replicas): tidying the rider's active set must not turn
    // its answer into an error, or the client's retry would meet a stale version.
    if (riderId && ends)
      await endRiderOrder(riderId, orderId).catch((error: unknown) =>
        requestLogger(c).warn({ err: error, orderId }, "rider's active orders not updated"),
      );
    return c.json({ orderId, status: to, version, ...(riderId ? { riderId } : {}) }, 200);
  });
  mountRoute(app, orderTrackRoute, async (c) => {
    const identity = c.get("identity");
    const order = await loadVisibleOrder(c.req.valid("param").id, identity);
    // The node's own rule: a URL handed to a caller the node would refuse (its restaurant) is a lie.
    requireWatcher(identity, order);
    // The lookup sends the customer somewhere: from the tick now running, as the nodes' own lookup.
    const owner = await ring.currentOwnerOf(order.orderId);
    // A node that starts is in every ring at the next tick (TRACKING_RING_REFRESH_MS).
    if (!owner) throw new EdgeError("unavailable", "no tracking node is available");
    return c.json(
      {
        orderId: order.orderId,
        node: owner.id,
        url: `${owner.url}/v1/orders/${encodeURIComponent(order.orderId)}/track`,
      },
      200,
    );
  });
  return app;
}
