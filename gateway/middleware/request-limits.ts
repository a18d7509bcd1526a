import http from "node:http";
import type { MiddlewareHandler } from "hono";
import { EdgeError } from "../../core/errors/edge-error";
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
 * the request; `raiseParserHeaderLimit` moves that outer wall out so this
 * middleware answers first, in the error shape.
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
    // The request line counts too, as HTTP parsers count it.
    let headerBytes = url.length;
    for (const [name, value] of c.req.raw.headers) headerBytes += name.length + value.length + 4;
    if (headerBytes > maxHeaderBytes)
      throw new EdgeError("headers_too_large", `headers over ${maxHeaderBytes} bytes`);
    if (url.includes("%") && !decodes(url)) {
      throw new EdgeError("bad_request", "malformed percent-encoding in the URL");
    }
    await next();
  };
}

/** Whether every path segment and query component of `url` percent-decodes as UTF-8. */
function decodes(url: string): boolean {
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  try {
    for (const part of url.slice(pathStart).split(/[/?&=]/)) {
      if (part.includes("%")) decodeURIComponent(part);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Bun's HTTP parser limit is the process's `http.maxHeaderSize` (settable
 * at run time). Only ever raised, never lowered: other servers in the same
 * process may rely on it.
 */
export function raiseParserHeaderLimit(bytes: number): void {
  const target = http as { maxHeaderSize: number };
  if (target.maxHeaderSize < bytes) target.maxHeaderSize = bytes;
}
