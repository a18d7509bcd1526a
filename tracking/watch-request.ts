import { bearerToken } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import {
  BEARER_SUBPROTOCOL_PREFIX,
  chooseSubprotocol,
  type FrameFormat,
  TRACKING_SUBPROTOCOLS,
} from "../core/protocol/tracking-protocol";
import { isKeyPart } from "../core/redis/keys";

// Plain decimal only (no sign, exponent, hex or spaces), a uint64 like the ping's seq.
const AFTER_SEQ = /^\d{1,20}$/;
const MAX_SEQ = 2n ** 64n - 1n;
const SERVED_SUBPROTOCOLS = Object.values(TRACKING_SUBPROTOCOLS).join(", ");

export interface WatchRequest {
  readonly orderId: string;
  readonly token: string;
  readonly format: FrameFormat;
  /** The subprotocol to answer with: the frame subprotocol the client offered, if any. */
  readonly protocol?: string;
  /** The last position seq the client already has (reconnects), if it said. */
  readonly afterSeq?: bigint;
}

/**
 * The track route's matcher: `/v1/orders/{id}/track`, also under the node's
 * public path (`/tracking/t1/v1/orders/{id}/track` when TRACKING_PUBLIC_URL
 * is wss://edge/tracking/t1), so a balancer may route by that prefix without
 * rewriting. Returns the order id as the client spelled it (undecoded), or
 * undefined for any other path (another node's prefix included).
 */
export function trackRoute(publicPath: string): (pathname: string) => string | undefined {
  const prefix = publicPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^(?:${prefix})?/v1/orders/([^/]+)/track$`);
  return (pathname) => pattern.exec(pathname)?.[1];
}

/**
 * Reads a watch request: the order from the path; the token from the
 * Authorization header, a `bearer.<jwt>` subprotocol, or `?access_token=`
 * (browsers cannot set headers); the frame format from the subprotocols.
 * Anything malformed is a 400 `bad_request` (401 without a token), offers
 * without a frame subprotocol among them included (chooseSubprotocol).
 */
export function parseWatchRequest(request: Request, url: URL, rawOrderId: string): WatchRequest {
  const orderId = decodePathPart(rawOrderId);
  if (orderId === undefined || !isKeyPart(orderId))
    throw new EdgeError("bad_request", "invalid order id");
  const offered = (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",")
    .map((protocol) => protocol.trim())
    .filter(Boolean);
  const token =
    bearerToken(request.headers.get("authorization")) ??
    offered
      .find((protocol) => protocol.startsWith(BEARER_SUBPROTOCOL_PREFIX))
      ?.slice(BEARER_SUBPROTOCOL_PREFIX.length) ??
    url.searchParams.get("access_token") ??
    undefined;
  if (!token) throw new EdgeError("unauthenticated", "missing token");
  const afterSeqText = url.searchParams.get("afterSeq");
  if (afterSeqText !== null && (!AFTER_SEQ.test(afterSeqText) || BigInt(afterSeqText) > MAX_SEQ))
    throw new EdgeError("bad_request", "afterSeq must be a plain decimal integer below 2^64");
  const chosen = chooseSubprotocol(offered);
  if (chosen === undefined)
    throw new EdgeError(
      "bad_request",
      `offer a frame subprotocol (${SERVED_SUBPROTOCOLS}) beside any other: the answer must name one of the offers`,
    );
  const { format, protocol } = chosen;
  return {
    orderId,
    token,
    format,
    ...(afterSeqText === null ? {} : { afterSeq: BigInt(afterSeqText) }),
    ...(protocol ? { protocol } : {}),
  };
}

export function decodePathPart(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}
