import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "../context";

const ALLOW_METHODS = "GET,HEAD,PUT,POST,DELETE,PATCH,QUERY";
/**
 * What a browser app on another origin may read beyond the CORS-safelisted
 * headers: when to retry, the rate budget, the request id to quote, whether
 * an order create was a replay, a search answer's freshness.
 */
const EXPOSE_HEADERS = [
  "X-Request-Id",
  "Retry-After",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "Idempotent-Replayed",
  "X-Cache",
  "Age",
].join(", ");

/**
 * CORS for the requests that need it: a browser's cross-origin request
 * carries `Origin`, and only those get `Access-Control-Allow-Origin` (the
 * origin, or `*` when every origin is allowed) with the headers an app may
 * read (`Access-Control-Expose-Headers`: the request id, Retry-After, the
 * RateLimit-* set, Idempotent-Replayed, X-Cache, Age). Every OPTIONS (a
 * preflight) is answered 204 here, with the methods, the asked headers and
 * a max age when the origin is allowed. Every answer says `Vary:
 * Origin`, so a cache never hands a browser an answer made for a client
 * without one. Headers are set before the route runs (Hono's prepared
 * headers): Hono's own `cors` touched the response first, which built a
 * placeholder Response per request (about 3 µs of a status read).
 */
export function browserCors(options: {
  /** Allowed origins; `*` among them allows any. */
  origins: readonly string[];
  maxAgeSeconds: number;
}): MiddlewareHandler<GatewayEnv> {
  const anyOrigin = options.origins.includes("*");
  const allowed = new Set(options.origins);
  const maxAge = String(options.maxAgeSeconds);
  return async function answerCors(c, next) {
    c.header("Vary", "Origin");
    const origin = c.req.header("origin");
    const isPreflight = c.req.method === "OPTIONS";
    if (origin === undefined && !isPreflight) return next();
    const allowOrigin = anyOrigin ? "*" : origin && allowed.has(origin) ? origin : undefined;
    if (allowOrigin !== undefined) {
      c.header("Access-Control-Allow-Origin", allowOrigin);
      c.header("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    }
    if (!isPreflight) return next();
    // Every OPTIONS is answered here (a browser's preflight, or a client asking what is allowed).
    if (allowOrigin !== undefined) {
      c.header("Access-Control-Allow-Methods", ALLOW_METHODS);
      c.header("Access-Control-Max-Age", maxAge);
      const asked = c.req.header("access-control-request-headers");
      if (asked) {
        c.header("Access-Control-Allow-Headers", asked);
        c.header("Vary", "Access-Control-Request-Headers", { append: true });
      }
    }
    return c.body(null, 204);
  };
}
