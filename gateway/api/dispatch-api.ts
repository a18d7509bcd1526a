import { createRoute, z } from "@hono/zod-openapi";
import { RIDER_VISIBLE_STATUSES } from "../../core/order-status";
import {
  cityId,
  decimalQuery,
  integerField,
  jsonObject,
  keyPartId,
  latitudeQuery,
  longitudeQuery,
  textField,
} from "./field-rules";
import { BEARER, errorResponses, jsonResponse } from "./responses";

export const DEFAULT_RADIUS_M = 3_000;
export const DEFAULT_CANDIDATES = 10;

const DISPATCH_ONLY = { forbidden: "the caller is not a dispatcher or ops" };

export const candidates = z
  .object({
    candidates: z.array(
      z
        .object({
          riderId: z.string(),
          distanceM: z.number().int(),
          lastSeenMs: z.number().int().openapi({ description: "the rider's last ping (Unix ms)" }),
          activeOrders: z
            .number()
            .int()
            .openapi({ description: "orders the rider already carries" }),
        })
        .openapi("Candidate"),
    ),
  })
  .openapi("Candidates");

/**
 * `GET /v1/dispatch/candidates`; its bounds are the deployment's
 * (`DISPATCH_MAX_RADIUS_M`, `DISPATCH_MAX_CANDIDATES`): their cost is Redis CPU.
 */
export function candidatesRoute(limits: { maxRadiusM: number; maxCount: number }) {
  const defaultRadius = Math.min(DEFAULT_RADIUS_M, limits.maxRadiusM);
  const defaultCount = Math.min(DEFAULT_CANDIDATES, limits.maxCount);
  return createRoute({
    method: "get",
    path: "/v1/dispatch/candidates",
    tags: ["dispatch"],
    summary: "Nearest riders to offer an order to",
    description:
      "Fresh riders (a ping within `DISPATCH_CANDIDATE_FRESH_MS`) without a pending offer, nearest first, with the orders each already carries. Dispatchers and ops.",
    security: BEARER,
    request: {
      query: z.object({
        city: cityId,
        lat: latitudeQuery,
        lng: longitudeQuery,
        radiusM: decimalQuery({
          min: 1,
          max: limits.maxRadiusM,
          fallback: defaultRadius,
          description: "search radius in metres",
        }),
        limit: decimalQuery({
          min: 1,
          max: limits.maxCount,
          integer: true,
          fallback: defaultCount,
          description: "how many riders at most",
        }),
      }),
    },
    responses: {
      200: jsonResponse(candidates, "The candidates, nearest first"),
      ...errorResponses(DISPATCH_ONLY),
    },
  });
}

export const offerRequest = jsonObject({
  orderId: keyPartId("an order id", "ord-5f2c9e"),
  riderId: keyPartId("a rider id", "rider-17"),
  city: cityId,
  ttlMs: integerField({
    min: 1_000,
    max: 300_000,
    description: "how long the rider has to answer (ms)",
  }).default(30_000),
}).openapi("OfferRequest");

export const offer = z
  .object({
    orderId: z.string(),
    riderId: z.string(),
    fencingToken: z.string().openapi({
      description: "`{orderId}:{n}`, n increasing per city: the rider answers with it",
    }),
    expiresAtMs: z.number().int().openapi({
      description:
        "when the offer expires (Unix ms, the server's clock): never later than its locks do",
    }),
    expiresInMs: z.number().int().min(0).openapi({
      description:
        "the time the offer had left when this answer was made (ms): count down from when you receive it; expiresAtMs is the server's clock",
    }),
  })
  .openapi("Offer");

export const createOfferRoute = createRoute({
  method: "post",
  path: "/v1/dispatch/offers",
  tags: ["dispatch"],
  summary: "Offer an order to a rider",
  description:
    "Takes a lock on the rider and one on the order, with one fencing token, for `ttlMs`, and sends the offer down the rider's ingest stream. Dispatchers and ops.",
  security: BEARER,
  request: {
    body: { required: true, content: { "application/json": { schema: offerRequest } } },
  },
  responses: {
    201: jsonResponse(offer, "The offer is out"),
    ...errorResponses(
      {
        bad_request:
          "a field breaks its rule (the message names it), or the order is in another city",
        ...DISPATCH_ONLY,
        not_found: "no such order",
        rider_busy: "the rider has a pending offer",
        order_offered: "the order has a pending offer",
        illegal_transition: "the order is not waiting for a rider",
      },
      { body: true },
    ),
  },
});

export const offerAnswer = jsonObject({
  action: z
    .enum(["accept", "decline"], { error: "must be accept or decline" })
    .openapi({ description: "accept assigns the order to the rider" }),
  token: textField(200, "the offer's fencing token", "ord-5f2c9e:42"),
}).openapi("OfferAnswer");

export const answeredOffer = z
  .union([
    z
      .object({
        orderId: z.string(),
        status: z.enum(RIDER_VISIBLE_STATUSES).openapi({
          description:
            "ASSIGNED for an accept; a retried accept gets the order's status now (READY or PICKED_UP once it moved on)",
        }),
        version: z.number().int(),
        riderId: z.string(),
      })
      .openapi("AcceptedOffer"),
    z.object({ orderId: z.string(), declined: z.literal(true) }).openapi("DeclinedOffer"),
  ])
  .openapi("AnsweredOffer");

export const answerOfferRoute = createRoute({
  method: "patch",
  path: "/v1/rides/{orderId}",
  tags: ["dispatch"],
  summary: "A rider accepts or declines an offer",
  description:
    "The rider and city come from the token. Both locks are released by the rider's own key and token; accept then assigns the order (CONFIRMED → ASSIGNED). An accept retried with the same token after its answer was lost (or a 5xx) is answered 200 with the order's status and version now while the order is still this rider's by that offer and not ended (ASSIGNED, READY or PICKED_UP), once a replica has the assignment (503 until then); one that comes while the first is still assigning the order (the offer taken, the assignment not yet made) is 503 with `Retry-After` until it is, then answered from the order as above. Riders only.",
  security: BEARER,
  request: {
    params: z.object({ orderId: keyPartId("an order id", "ord-5f2c9e") }),
    body: { required: true, content: { "application/json": { schema: offerAnswer } } },
  },
  responses: {
    200: jsonResponse(answeredOffer, "Accepted (the order is the rider's) or declined"),
    ...errorResponses(
      {
        forbidden: "the caller is not a rider, or the rider's token has no city",
        not_found: "the order is gone",
        offer_expired:
          "the offer expired, was replaced or is not this rider's (or, for a retried accept, the order is no longer this rider's or has ended)",
        illegal_transition: "the order is no longer waiting for a rider",
        unavailable:
          "Redis is unreachable, or an order change could not be confirmed on its replicas (`ORDER_WRITE_REPLICAS`); for a retried accept also: no replica has the assignment yet, or the first accept of this offer is still assigning the order; `Retry-After`",
      },
      { body: true },
    ),
  },
});
