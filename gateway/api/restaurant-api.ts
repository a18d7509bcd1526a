import { createRoute, z } from "@hono/zod-openapi";
import { keyPartId, latitudeQuery, latLng, longitudeQuery } from "./field-rules";
import { BEARER, errorResponses, jsonResponse, UPSTREAM_ERRORS } from "./responses";

/** The search service's restaurants: what the gateway checks, and the fields it passes through. */
export const restaurant = z
  .looseObject({
    id: z.string(),
    name: z.string(),
    city: z.string().optional(),
    cuisine: z.string().optional(),
    location: latLng.optional(),
    distanceM: z.number().optional().openapi({ description: "from the searched cell's centre" }),
  })
  .openapi("Restaurant", {
    description: "Further fields of the search service pass through unchanged",
  });

export const searchResult = z
  .looseObject({ restaurants: z.array(restaurant) })
  .openapi("RestaurantSearch");

export const searchRestaurantsRoute = createRoute({
  method: "get",
  path: "/v1/restaurants",
  tags: ["restaurants"],
  summary: "Search restaurants near a point",
  description:
    "Cached per geohash-5 cell (~5 km; the service is asked about the cell's centre) and normalised query (case, spacing and word order do not matter) for `SEARCH_CACHE_SECONDS`; served stale for up to `SEARCH_STALE_IF_ERROR_SECONDS` more while the search service fails. Any role.",
  security: BEARER,
  request: {
    query: z.object({
      lat: latitudeQuery,
      lng: longitudeQuery,
      q: z
        .string({ error: "must be text" })
        .optional()
        .openapi({ description: "what the customer types; its first 100 characters count" }),
    }),
  },
  responses: {
    200: jsonResponse(searchResult, "Restaurants, nearest first", {
      headers: {
        "X-Cache": {
          description:
            "`hit` (from the cache), `miss` (asked the service now) or `stale` (the service failed; an older answer)",
          schema: { type: "string", enum: ["hit", "miss", "stale"] },
        },
        Age: {
          description: "with `X-Cache: stale`: seconds since the answer was fetched",
          schema: { type: "integer" },
        },
      },
    }),
    ...errorResponses(UPSTREAM_ERRORS),
  },
});

export const menu = z
  .looseObject({
    restaurantId: z.string(),
    items: z.array(
      z
        .looseObject({
          id: z.string().openapi({ description: "what an order's items[].menuItemId names" }),
          name: z.string(),
          priceCents: z.number().optional(),
        })
        .openapi("MenuItem"),
    ),
  })
  .openapi("Menu", { description: "As the menu service answers it, checked for its shape" });

export const restaurantMenuRoute = createRoute({
  method: "get",
  path: "/v1/restaurants/{id}/menu",
  tags: ["restaurants"],
  summary: "A restaurant's menu",
  description: "From the menu service, not cached. Any role.",
  security: BEARER,
  request: { params: z.object({ id: keyPartId("a restaurant id", "ldn-curry") }) },
  responses: {
    200: jsonResponse(menu, "The menu"),
    ...errorResponses({ not_found: "no such restaurant", ...UPSTREAM_ERRORS }),
  },
});
