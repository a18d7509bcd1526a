import type { MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import type { GatewayEnv } from "../context";

/** One pino line per request, with a child logger (carrying the request id) for handlers. */
export function accessLog(logger: Logger): MiddlewareHandler<GatewayEnv> {
  return async function logRequest(c, next) {
    const started = performance.now();
    const requestLogger = logger.child({ requestId: c.get("requestId") });
    c.set("logger", requestLogger);
    await next();
    requestLogger.info(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Number((performance.now() - started).toFixed(2)),
      },
      "request",
    );
  };
}
