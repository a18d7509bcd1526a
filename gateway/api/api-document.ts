import { OpenAPIHono } from "@hono/zod-openapi";
import { answerOfferRoute, candidatesRoute, createOfferRoute } from "./dispatch-api";
import { liveViewRoute } from "./live-api";
import {
  apiReferenceRoute,
  healthRoute,
  metricsRoute,
  openApiRoute,
  readyRoute,
} from "./operations-api";
import {
  changeStatusRoute,
  createOrderRoute,
  orderStatusRoute,
  orderTrackRoute,
} from "./order-api";
import { RESPONSE_HEADERS } from "./responses";
import { restaurantMenuRoute, searchRestaurantsRoute } from "./restaurant-api";

/** The deployment's limits that appear in the contract. */
export interface ApiLimits {
  maxRadiusM: number;
  maxCount: number;
}

/** Every route of the gateway's HTTP API, as declared (the live map's page and assets aside). */
export function apiRoutes(limits: ApiLimits) {
  return [
    searchRestaurantsRoute,
    restaurantMenuRoute,
    createOrderRoute,
    orderStatusRoute,
    changeStatusRoute,
    orderTrackRoute,
    candidatesRoute(limits),
    createOfferRoute,
    answerOfferRoute,
    liveViewRoute,
    healthRoute,
    readyRoute,
    metricsRoute,
    openApiRoute,
    apiReferenceRoute,
  ];
}

const DESCRIPTION = `The delivery edge's HTTP API: orders, restaurant search, dispatch and the
live map's view. Riders stream positions over Connect/gRPC and customers watch orders over
WebSockets; those contracts are the protobuf files and the tracking protocol (see the repository).

Every \`/v1\` route needs a bearer JWT (\`sub\`, \`role\`, \`exp\`; riders also \`city\`); who
the caller is comes from the token only, never from a body or query field. Errors are
\`{"error": {"code", "message", "requestId"}}\`; each response below lists the codes it may
carry and when. Every answer carries \`X-Request-Id\`; \`/v1\` answers carry the caller's
\`RateLimit-*\` headers, and a 429 or 503 \`Retry-After\`. Query numbers are plain decimal
(no exponent, hex or \`+\`). Clients must accept fields, enum values and error codes they do
not know: they may be added without a new version.`;

/** The OpenAPI 3.1 document of the gateway with `limits`: what it serves and what docs/openapi.json holds. */
export function apiDocument(limits: ApiLimits) {
  const api = new OpenAPIHono();
  const registry = api.openAPIRegistry;
  registry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description:
      "HS256 with the deployment's secret, or RS256/ES256/EdDSA from its JWKS; `./edge token` mints development tokens",
  });
  for (const [name, header] of Object.entries(RESPONSE_HEADERS))
    registry.registerComponent("headers", name, header);
  for (const route of apiRoutes(limits)) registry.registerPath(route);
  return api.getOpenAPI31Document({
    openapi: "3.1.0",
    info: { title: "delivery-edge gateway", version: "1.0.0", description: DESCRIPTION },
    tags: [
      { name: "orders", description: "Placing orders, their status and where to watch them" },
      { name: "restaurants", description: "Search and menus, through the gateway's cache" },
      { name: "dispatch", description: "Candidates, offers with fencing tokens, riders' answers" },
      { name: "operations", description: "The live map's view, health, metrics, this document" },
    ],
  });
}
