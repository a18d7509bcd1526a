import type { MiddlewareHandler } from "hono";
import { EdgeError } from "../../core/errors/edge-error";
import { percentDecodes, requestHeadBytes } from "../../core/http/request-head";
import type { GatewayEnv } from "../context";

/**
 * Refuses, before any route runs, a query string over `maxQueryBytes` or a
 * header section over `maxHeaderBytes` (431 `headers_too_large`), and a URL
 * whose percent-encoding does not decode (400 `bad_request`): Hono would
 * otherwise hand routes the raw `%ZZ`, and a route might pass it on. Runs
 * after the request id, so every refusal carries one.
 *
 * Bun's own HTTP parser refuses a header section over its limit (16 KiB by
 * default, request line included) with a bare 431 before JavaScript sees
 * the request; core's `raiseParserHeaderLimit` moves that outer wall out so
 * this middleware answers first, in the error shape.
 */
export function requestLimits(options: {
  maxHeaderBytes: number;
  maxQueryBytes: number;
}): MiddlewareHandler<GatewayEnv> {
  const { maxHeaderBytes, maxQueryBytes } = options;
  for (const [name, value] of Object.entries(options)) {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`requestLimits: ${name} must be a positive integer`);
  }
  return async function checkRequestLimits(c, next) {
    const url = c.req.url;
    const queryAt = url.indexOf("?");
    const queryBytes = queryAt < 0 ? 0 : url.length - queryAt - 1;
    if (queryBytes > maxQueryBytes)
      throw new EdgeError("headers_too_large", `query string over ${maxQueryBytes} bytes`);
    if (requestHeadBytes(c.req.raw) > maxHeaderBytes)
      throw new EdgeError("headers_too_large", `headers over ${maxHeaderBytes} bytes`);
    if (!percentDecodes(url)) {
      throw new EdgeError("bad_request", "malformed percent-encoding in the URL");
    }
    await next();
  };
}
