import { createRoute, z } from "@hono/zod-openapi";
import { LIVE_VIEW_LIMITS } from "../live-map/live-view";
import { cityId, latLng, orderStatus } from "./field-rules";
import { BEARER, errorResponses, jsonResponse } from "./responses";

export const liveView = z
  .object({
    city: z.string(),
    cities: z.array(z.string()).openapi({ description: "every city with riders" }),
    at: z.number().int().openapi({ description: "when the view was read (Unix ms)" }),
    riders: z.array(
      z
        .object({
          riderId: z.string(),
          lat: z.number(),
          lng: z.number(),
          seenAt: z.number().int(),
          orderIds: z.array(z.string()),
        })
        .openapi("LiveRider"),
    ),
    orders: z.array(
      z
        .object({
          orderId: z.string(),
          riderId: z.string().optional(),
          status: orderStatus,
          version: z.number().int(),
          pickup: latLng,
          dropoff: latLng,
          node: z
            .object({ id: z.string(), url: z.string() })
            .optional()
            .openapi({ description: "the tracking node that owns the order" }),
        })
        .openapi("LiveOrder"),
    ),
    nodes: z.array(
      z
        .object({
          tier: z.enum(["ingest", "tracking"]),
          nodeId: z.string(),
          at: z.number().int(),
          figures: z.record(z.string(), z.number()),
        })
        .openapi("NodeStats"),
    ),
    totals: z.object({
      pingsPerSecond: z.number(),
      sockets: z.number().int(),
      fanoutP99Ms: z.number().optional(),
    }),
  })
  .openapi("LiveView");

export const liveViewRoute = createRoute({
  method: "get",
  path: "/v1/ops/live",
  tags: ["operations"],
  summary: "The live map's view of a city",
  description: `A city's fresh riders (at most ${LIVE_VIEW_LIMITS.riders}) with their active orders (at most ${LIVE_VIEW_LIMITS.orders}) and each order's tracking node, and every node's reported figures. Polled by the live map. Dispatchers and ops.`,
  security: BEARER,
  request: { query: z.object({ city: cityId }) },
  responses: {
    200: jsonResponse(liveView, "The view"),
    ...errorResponses({ forbidden: "the caller is not a dispatcher or ops" }),
  },
});
