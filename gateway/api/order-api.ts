import { createRoute, z } from "@hono/zod-openapi";
import { integerField, jsonObject, keyPartId, latLng, orderStatus } from "./field-rules";
import { BEARER, errorResponses, jsonResponse, UPSTREAM_ERRORS } from "./responses";

const orderId = keyPartId("an order id", "ord-5f2c9e");
const orderPath = z.object({ id: orderId });
const NOT_FOUND = {
  not_found:
    "no such order, its record expired (`ORDER_ENDED_TTL_MS` after it ended), or the caller is not its customer, assigned rider or restaurant, nor dispatch or ops (another's order is answered as a missing one)",
};

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{8,128}$/;
const idempotencyRule = { error: "must be 8-128 of A-Z a-z 0-9 _ -" };

export const orderRequest = jsonObject({
  restaurantId: keyPartId("a restaurant id", "ldn-curry"),
  items: z
    .array(
      jsonObject({
        menuItemId: keyPartId("a menu item id", "ldn-curry-m1"),
        quantity: integerField({ min: 1, max: 99, description: "how many", example: 2 }),
      }),
      { error: "must be a list of 1 to 50 items" },
    )
    .min(1, { error: "must be a list of 1 to 50 items" })
    .max(50, { error: "must be a list of 1 to 50 items" }),
  dropoff: latLng,
  paymentMethod: keyPartId("a payment method id", "card"),
}).openapi("OrderRequest", {
  description:
    "The customer comes from the token. Fields not listed here (prices, totals, another customer) are dropped, never forwarded: the order service prices the order.",
});

export const placedOrder = z
  .object({
    id: orderId,
    customerId: z.string(),
    restaurantId: z.string(),
    city: z.string(),
    pickup: latLng,
    dropoff: latLng,
    status: z.literal("CONFIRMED"),
    total: z
      .number()
      .optional()
      .openapi({ description: "as priced by the order service, when it says" }),
  })
  .openapi("PlacedOrder");

export const createOrderRoute = createRoute({
  method: "post",
  path: "/v1/orders",
  tags: ["orders"],
  summary: "Place an order",
  description:
    "Idempotent per customer and `Idempotency-Key`: the same key and body replays the first answer (with `Idempotent-Replayed: true`) for 24 h, including a refusal; the same key with another body is 422; while the first is in flight, 409 with `Retry-After`. The key goes to the order service as `<customer>:<key>`, so a retry after a gateway crash gets the same order. Customers only.",
  security: BEARER,
  request: {
    headers: z.object({
      "Idempotency-Key": z.string(idempotencyRule).regex(IDEMPOTENCY_KEY, idempotencyRule).openapi({
        description: "one per order the customer means to place; reuse it to retry",
        example: "3f1c2a7e-order-1",
      }),
    }),
    body: { required: true, content: { "application/json": { schema: orderRequest } } },
  },
  responses: {
    201: jsonResponse(placedOrder, "The order, placed (or replayed)", {
      headers: {
        "Idempotent-Replayed": {
          description: "`true` when this is the stored answer to an earlier request with the key",
          schema: { type: "string", enum: ["true"] },
        },
      },
    }),
    ...errorResponses(
      {
        forbidden: "the caller is not a customer",
        idempotency_in_flight:
          "a request with this Idempotency-Key is still being placed (here or at the order service); `Retry-After`",
        idempotency_mismatch: "this Idempotency-Key was used with another body",
        order_rejected:
          "the order service refused the order: always the message `the order service refused the order` (the service's reason is neither sent nor logged: the gateway logs its status under the request id)",
        ...UPSTREAM_ERRORS,
      },
      { body: true },
    ),
  },
});

const statusFields = {
  orderId,
  status: orderStatus,
  version: z
    .number()
    .int()
    .openapi({ description: "bumped by every change; send it back as expectedVersion" }),
  riderId: z.string().optional().openapi({ description: "the assigned rider, once there is one" }),
};

export const orderStatusView = z
  .object({ ...statusFields, pickup: latLng, dropoff: latLng })
  .openapi("OrderStatusView", {
    description: "Never the rider's position: that is on the tracking socket",
  });

export const orderStatusRoute = createRoute({
  method: "get",
  path: "/v1/orders/{id}/status",
  tags: ["orders"],
  summary: "Read an order's status",
  description:
    "Straight from the order's tracking record. The order's customer, assigned rider and restaurant; dispatchers and ops.",
  security: BEARER,
  request: { params: orderPath },
  responses: {
    200: jsonResponse(orderStatusView, "The order's status"),
    ...errorResponses(NOT_FOUND),
  },
});

export const statusChange = jsonObject({
  to: orderStatus,
  expectedVersion: integerField({
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    description: "the version the caller last saw (compare-and-set)",
    example: 3,
  }),
}).openapi("StatusChange");

export const changedStatus = z.object(statusFields).openapi("ChangedStatus");

export const changeStatusRoute = createRoute({
  method: "post",
  path: "/v1/orders/{id}/status",
  tags: ["orders"],
  summary: "Move an order one step",
  description:
    "READY: the order's restaurant. PICKED_UP and DELIVERED: the assigned rider. CANCELLED (from CONFIRMED or ASSIGNED): dispatchers. Ops may take any of these steps. ASSIGNED happens only through an accepted offer. A step that ends the order (DELIVERED, CANCELLED) starts its record's expiry.",
  security: BEARER,
  request: {
    params: orderPath,
    body: { required: true, content: { "application/json": { schema: statusChange } } },
  },
  responses: {
    200: jsonResponse(changedStatus, "The order after the step"),
    ...errorResponses(
      {
        forbidden: "the caller may read the order but not take this step",
        ...NOT_FOUND,
        stale_version: "the order changed since expectedVersion (read it again)",
        illegal_transition:
          "the step is not legal from the order's current status (or leads to ASSIGNED or CONFIRMED)",
      },
      { body: true },
    ),
  },
});

export const trackingTarget = z
  .object({
    orderId,
    node: z.string().openapi({ description: "the tracking node that owns the order" }),
    url: z.string().openapi({
      description:
        "its WebSocket URL for this order (ws:// or wss://); connect offering a frame subprotocol (tracking.v2.json or tracking.v1.proto; tracking.v1.json is deprecated), then follow the close codes' reconnect rules",
    }),
  })
  .openapi("TrackingTarget");

export const orderTrackRoute = createRoute({
  method: "get",
  path: "/v1/orders/{id}/track",
  tags: ["orders"],
  summary: "Where to watch an order live",
  description:
    "The tracking node that owns the order by consistent hash, the same ring every node builds. Who may call: those the node lets watch, the order's customer, assigned rider, dispatchers and ops; its restaurant (which reads the status) is refused 403, as at the node.",
  security: BEARER,
  request: { params: orderPath },
  responses: {
    200: jsonResponse(trackingTarget, "The owning node's socket URL"),
    ...errorResponses({
      ...NOT_FOUND,
      forbidden: "the order's restaurant: it follows the order's status, not its rider",
      unavailable: "no tracking node is alive (`Retry-After`), or Redis is unreachable",
    }),
  },
});
