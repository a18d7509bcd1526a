import type { Identity } from "../core/auth/identity";
import { bearerToken } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import { TRACKING_SUBPROTOCOLS } from "../core/protocol/tracking-protocol";
import { isKeyPart } from "../core/redis/keys";
import type { OrderRecord } from "../core/redis/order-record";

const TRACK_PATH = /^\/v1\/orders\/([^/]+)\/track$/;

export interface WatchRequest {
  readonly orderId: string;
  readonly token: string;
  readonly format: "json" | "proto";
  /** The subprotocol to answer with, when the client offered one of ours. */
  readonly protocol?: string;
  /** The last position seq the client already has (reconnects). */
  readonly afterSeq: number;
}

/** True when `pathname` is a track route (other paths are not WebSocket upgrades). */
export function isTrackPath(pathname: string): boolean {
  return TRACK_PATH.test(pathname);
}

/**
 * Reads a watch request: the order from the path; the token from the
 * Authorization header, a `bearer.<jwt>` subprotocol, or `?access_token=`
 * (browsers cannot set headers); the frame format from the subprotocols.
 */
export function parseWatchRequest(request: Request, url: URL): WatchRequest {
  const orderId = decodeURIComponent(TRACK_PATH.exec(url.pathname)?.[1] ?? "");
  if (!isKeyPart(orderId)) throw new EdgeError("bad_request", "invalid order id");
  const offered = (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",")
    .map((protocol) => protocol.trim())
    .filter(Boolean);
  const token =
    bearerToken(request.headers.get("authorization")) ??
    offered.find((protocol) => protocol.startsWith("bearer."))?.slice("bearer.".length) ??
    url.searchParams.get("access_token") ??
    undefined;
  if (!token) throw new EdgeError("unauthenticated", "missing token");
  const afterSeqText = url.searchParams.get("afterSeq") ?? "0";
  if (!/^\d{1,19}$/.test(afterSeqText))
    throw new EdgeError("bad_request", "afterSeq must be a non-negative integer");
  const format = offered.includes(TRACKING_SUBPROTOCOLS.proto) ? "proto" : "json";
  const protocol =
    format === "proto"
      ? TRACKING_SUBPROTOCOLS.proto
      : offered.includes(TRACKING_SUBPROTOCOLS.json)
        ? TRACKING_SUBPROTOCOLS.json
        : undefined;
  return {
    orderId,
    token,
    format,
    afterSeq: Number(afterSeqText),
    ...(protocol ? { protocol } : {}),
  };
}

/** Only the order's customer, its assigned rider, dispatchers and ops may watch it. */
export function assertMayWatch(identity: Identity, order: OrderRecord): void {
  const allowed =
    identity.role === "dispatcher" ||
    identity.role === "ops" ||
    (identity.role === "customer" && identity.sub === order.customerId) ||
    (identity.role === "rider" && identity.sub === order.riderId);
  if (!allowed) throw new EdgeError("forbidden", "not allowed to watch this order");
}
