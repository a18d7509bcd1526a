import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import { EdgeError } from "../../core/errors/edge-error";
import { errorBody } from "../../core/errors/error-response";
import type { GatewayEnv } from "../context";

/** The one JSON error shape: `{ error: { code, message, requestId } }`. */
export function errorResponse(c: Context<GatewayEnv>, error: EdgeError): Response {
  c.set("errorCode", error.code);
  if (error.retryAfterSeconds !== undefined)
    c.header("Retry-After", String(error.retryAfterSeconds));
  return c.json(errorBody(error, c.get("requestId")), error.httpStatus as ContentfulStatusCode);
}

/**
 * `app.onError`: EdgeErrors keep their code (and Retry-After when they carry
 * one); a Redis connection failure is 503 `unavailable`; anything else is a
 * logged 500 whose cause is never sent.
 */
export function createErrorHandler(logger: Logger) {
  return function handleError(error: Error, c: Context<GatewayEnv>): Response {
    const edgeError =
      error instanceof EdgeError
        ? error
        : isRedisUnavailable(error)
          ? new EdgeError("unavailable", "a backing store is unavailable", { cause: error })
          : EdgeError.from(error);
    // Every 5xx is logged with its cause (an upstream's status, timeout or bad body); 4xx are the caller's.
    if (edgeError.httpStatus >= 500) {
      const level = logLevelOf(edgeError);
      logger[level](
        { requestId: c.get("requestId"), code: edgeError.code, err: edgeError.cause ?? error },
        edgeError.message,
      );
    }
    return errorResponse(c, edgeError);
  };
}

/**
 * `error` for what someone must look at: a bug (`internal`), or `unavailable`
 * caused by an exception (a Redis command that failed). An `unavailable`
 * without one is an answer the edge chose for a passing state, telling the
 * client to retry ("this offer's first accept is still under way", "no
 * tracking node is available", a shard whose replicas lag, which
 * acked-writes warns of once itself): `warn`, as every other 5xx here is
 * (an upstream's failure, the identity provider's keys); their rate pages
 * through the alerts (GatewayServerErrors), not through error lines.
 */
function logLevelOf(error: EdgeError): "error" | "warn" {
  if (error.code === "internal") return "error";
  return error.code === "unavailable" && error.cause !== undefined ? "error" : "warn";
}

/**
 * ioredis's errors while disconnected (offline queue off, connection closed,
 * max retries) and a cluster's while a master's slots are failing over
 * (including MOVED in a pipeline, until the slot map is read again: the
 * command did not run).
 */
export function isRedisUnavailable(error: unknown): boolean {
  return (
    error instanceof Error &&
    /Stream isn't writeable|Connection is closed|MaxRetriesPerRequest|ECONNREFUSED|ClusterAllFailedError|CLUSTERDOWN|TRYAGAIN|\bMOVED \d|\bASK \d|Too many Cluster redirections|Failed to refresh slots cache/i.test(
      `${error.name} ${error.message}`,
    )
  );
}
