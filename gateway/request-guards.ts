import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { TokenVerifier } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import { createAuthFailureLimiter } from "../core/limits/auth-failure-limit";
import type { RedisClient } from "../core/redis/scripts";
import { clientAddressReader } from "./client-address";
import type { GatewayConfig } from "./config";
import type { GatewayEnv } from "./context";
import type { GatewayMetrics } from "./metrics";
import { authenticate } from "./middleware/authenticate";
import { browserCors } from "./middleware/browser-cors";
import { errorResponse } from "./middleware/error-handler";
import { rateLimit } from "./middleware/rate-limit";
import { requestLimits } from "./middleware/request-limits";
import { isStatusRead } from "./routes/order-tracking";

// The gateway's guards, built from its config as startGateway mounts them
// (bench/gateway/status-breakdown.ts measures these same ones).

/** Every route, after the request id and the request's observation: head, query and body sizes, CORS. */
export function edgeGuards(config: GatewayConfig): MiddlewareHandler<GatewayEnv>[] {
  return [
    requestLimits({ maxHeaderBytes: config.maxHeaderBytes, maxQueryBytes: config.maxQueryBytes }),
    browserCors({ origins: config.corsOrigins, maxAgeSeconds: 600 }),
    bodyLimit({
      maxSize: config.maxBodyBytes,
      onError: (c) =>
        errorResponse(
          c,
          new EdgeError("payload_too_large", `body over ${config.maxBodyBytes} bytes`),
        ),
    }),
  ];
}

/** `/v1/*`: the bearer token, with the failed-authentication limit per client address. */
export function tokenCheck(
  config: GatewayConfig,
  deps: {
    client: RedisClient;
    verifier: TokenVerifier;
    metrics: GatewayMetrics;
    /** The caller's address; by default as config.clientAddressHeader says. */
    clientAddress?: (c: Context) => string;
  },
): MiddlewareHandler<GatewayEnv> {
  return authenticate(deps.verifier, {
    limiter: createAuthFailureLimiter({
      client: deps.client,
      limit: config.authFailureLimit,
      windowMs: config.authFailureWindowMs,
    }),
    clientAddress: deps.clientAddress ?? clientAddressReader(config.clientAddressHeader),
    onRefused: () => deps.metrics.rateLimited.inc({ limit: "failed_auth" }),
  });
}

/**
 * `/v1/*`: the per-identity request limit. A status read sends its record
 * read with the count (`readAhead`, on unless `readAhead: false`).
 */
export function requestRateLimit(
  config: GatewayConfig,
  deps: { client: RedisClient; metrics: GatewayMetrics },
  options: { readAhead?: boolean } = {},
): MiddlewareHandler<GatewayEnv> {
  return rateLimit({
    client: deps.client,
    limit: config.rateLimit,
    windowMs: config.rateLimitWindowMs,
    onRefused: () => deps.metrics.rateLimited.inc({ limit: "requests" }),
    onUnchecked: () => deps.metrics.rateLimitUnchecked.inc(),
    ...(options.readAhead === false ? {} : { readAhead: isStatusRead }),
  });
}
