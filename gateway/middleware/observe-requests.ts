import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Logger } from "pino";
import type { AccessLog } from "../access-log";
import type { GatewayEnv } from "../context";

/** The route template a request matched, in the OpenAPI form (`/v1/orders/{id}/status`), or `unmatched`. */
export function routeTemplate(c: Context<GatewayEnv>): string {
  const routes = matchedRoutes(c);
  for (let index = routes.length - 1; index >= 0; index -= 1) {
    const route = routes[index];
    // Middleware is mounted for ALL methods; the endpoint is the last route of a method.
    if (route && route.method !== "ALL") return openApiPath(route.path);
  }
  return "unmatched";
}

// One entry per route of the app, so bounded.
const openApiPaths = new Map<string, string>();
function openApiPath(path: string): string {
  let template = openApiPaths.get(path);
  if (template === undefined) {
    template = path.replace(/:(\w+)/g, "{$1}");
    openApiPaths.set(path, template);
  }
  return template;
}

/** A child of the root logger carrying the request id, made when a handler has something to log. */
export function requestLogger(c: Context<GatewayEnv>): Logger {
  return c.get("logger").child({ requestId: c.get("requestId") });
}

/**
 * Observes every request once it is answered: one access line (request
 * id, method, path, status, ms, and the error code of a 4xx/5xx; written
 * by `accessLog` when the logger is at info or below) and the request
 * metrics by route template and status. Runs right after the request id,
 * so errors thrown anywhere below are already answered (Hono's onError)
 * when it looks. The root logger is handed down as is: a child logger per
 * request (its bindings serialized and redacted) costs more than the
 * access line at the gateway's rates, so `requestLogger` makes one only
 * when a handler logs.
 */
export function observeRequests(options: {
  logger: Logger;
  accessLog: AccessLog;
  recordRequest: (method: string, route: string, status: number, seconds: number) => void;
}): MiddlewareHandler<GatewayEnv> {
  const { logger, accessLog, recordRequest } = options;
  return async function observeRequest(c, next) {
    const started = performance.now();
    c.set("logger", logger);
    await next();
    const ms = performance.now() - started;
    const { status } = c.res;
    const { method } = c.req;
    recordRequest(method, routeTemplate(c), status, ms / 1000);
    if (!logger.isLevelEnabled("info")) return;
    accessLog.write({
      requestId: c.get("requestId"),
      method,
      path: c.req.path,
      status,
      code: status >= 400 ? (c.get("errorCode") ?? "unknown") : undefined,
      ms,
    });
  };
}
