import http from "node:http";

/**
 * The size of a request's head as an HTTP/1.1 parser counts it: the request
 * line (method, target, version) and every header line. What a tier's own
 * header limit compares against, so that a refusal is a 431 in the edge's
 * JSON error shape rather than the engine's bare one.
 */
export function requestHeadBytes(request: Request): number {
  const url = request.url;
  const targetStart = url.indexOf("/", url.indexOf("//") + 2);
  const target = targetStart < 0 ? 1 : url.length - targetStart;
  // "<METHOD> <target> HTTP/1.1\r\n"
  let bytes = request.method.length + 1 + target + 11;
  // "<name>: <value>\r\n"
  for (const [name, value] of request.headers) bytes += name.length + value.length + 4;
  return bytes;
}

/**
 * Whether every percent-escape in a URL's path and query decodes (as
 * UTF-8). `%ZZ` or a cut multi-byte sequence (`%E0%A4%A`) is a client's
 * mistake to answer with 400, not a URIError deep in a handler.
 */
export function percentDecodes(url: string): boolean {
  if (!url.includes("%")) return true;
  try {
    for (const part of url.split(/[/?&=#]/)) if (part.includes("%")) decodeURIComponent(part);
    return true;
  } catch {
    return false;
  }
}

/**
 * Bun's HTTP parser refuses a request head over the process-wide
 * `http.maxHeaderSize` (16 KiB by default, settable at run time) with a bare
 * 431 before any JavaScript runs. A tier raises it above its own limit so
 * that its handler answers first, in the error shape; only ever raised,
 * never lowered, since other servers in the same process rely on it.
 */
export function raiseParserHeaderLimit(bytes: number): void {
  const parser = http as { maxHeaderSize: number };
  if (parser.maxHeaderSize < bytes) parser.maxHeaderSize = bytes;
}
