import type { Server } from "bun";
import type { Logger } from "pino";
import { requireWatcher } from "../core/auth/order-access";
import type { TokenVerifier } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import { errorResponse, requestIdOf } from "../core/errors/error-response";
import { percentDecodes, requestHeadBytes } from "../core/http/request-head";
import type { AuthFailureLimiter } from "../core/limits/auth-failure-limit";
import { verifyWithinLimit } from "../core/limits/verify-within-limit";
import type { OrderRecord } from "../core/redis/order-record";
import type { TrackingMetrics } from "./metrics";
import type { SocketQuota } from "./socket-quota";
import type { WatchAttempts } from "./watch-attempts";
import { parseWatchRequest, trackRoute } from "./watch-request";
import type { WatcherData } from "./watcher-socket";

/**
 * `Retry-After` of a 429 `too_many_connections`: a share frees the moment one
 * of the identity's sockets closes (an app reconnecting while its old socket
 * still closes is the usual case), so a few seconds, not the seconds until a
 * silent socket's ping goes unanswered.
 */
const SOCKET_SHARE_RETRY_AFTER_SECONDS = 5;

/**
 * The HTTP side of a watch: every check a request passes before it becomes
 * a WebSocket, each refusal an HTTP status with the JSON error shape and
 * the request id, counted by code. In order: the request head's size (431),
 * the route (404), draining (503), percent-encoding and the request's own
 * fields (400), the client address's failed authentications (429
 * rate_limited: a blocked address is refused before the signature check,
 * but a token this node already verified still passes), the token (401), the identity's watch requests in this
 * window (429 rate_limited), the order and who may watch it (404 when the
 * caller is not one of its parties, as for a missing order; 403 its restaurant),
 * the identity's share of sockets (429 too_many_connections, Retry-After: 5).
 */
export function createWatchUpgrade(options: {
  /** The node's public path (see trackRoute). */
  publicPath: string;
  /** Sent in the 101 as X-Tracking-Node (which node took the watch). */
  nodeId: string;
  maxHeaderBytes: number;
  verifier: TokenVerifier;
  /** Failed token checks per client address (core/limits/auth-failure-limit.ts). */
  failures: {
    limiter: AuthFailureLimiter;
    clientAddress: (request: Request, server: Server<WatcherData>) => string;
  };
  loadOrder: (orderId: string) => Promise<OrderRecord>;
  quota: SocketQuota;
  /** Watch requests per identity and window, spent before the order is read. */
  attempts: WatchAttempts;
  /**
   * Called for an admitted watch before the upgrade: brings the ring up to
   * the current tick when it would send the watcher away on a stale view.
   */
  settleOwner: (orderId: string) => Promise<void>;
  metrics: TrackingMetrics;
  isDraining: () => boolean;
  logger: Logger;
}) {
  const { maxHeaderBytes, verifier, failures, loadOrder, quota, metrics, isDraining, logger } =
    options;
  const matchTrack = trackRoute(options.publicPath);

  async function admit(request: Request, server: Server<WatcherData>): Promise<void> {
    if (requestHeadBytes(request) > maxHeaderBytes)
      throw new EdgeError("headers_too_large", `request head over ${maxHeaderBytes} bytes`);
    const url = new URL(request.url);
    const rawOrderId = matchTrack(url.pathname);
    if (rawOrderId === undefined) throw new EdgeError("not_found", "no such route");
    if (isDraining()) throw new EdgeError("draining", "node is draining");
    if (!percentDecodes(request.url))
      throw new EdgeError("bad_request", "malformed percent-encoding in the URL");
    const watch = parseWatchRequest(request, url, rawOrderId);
    const identity = await verifyWithinLimit(verifier, watch.token, {
      limiter: failures.limiter,
      address: () => failures.clientAddress(request, server),
      onRefused: () => metrics.failedAuthRefused.inc(),
    });
    const over = options.attempts.spend(identity);
    if (over) {
      // Who it is, once per window: what the operator needs to revoke a token or raise the budget.
      if (over.firstRefusal)
        logger.warn(
          { role: identity.role, sub: identity.sub, retryAfterSeconds: over.retryAfterSeconds },
          "watch requests throttled",
        );
      throw new EdgeError("rate_limited", "too many watch requests for this token", {
        retryAfterSeconds: over.retryAfterSeconds,
      });
    }
    const order = await loadOrder(watch.orderId);
    requireWatcher(identity, order);
    await options.settleOwner(watch.orderId);
    const quotaKey = quota.take(identity);
    if (quotaKey === undefined)
      throw new EdgeError("too_many_connections", "too many open tracking sockets for this token", {
        retryAfterSeconds: SOCKET_SHARE_RETRY_AFTER_SECONDS,
      });
    const data: WatcherData = {
      orderId: watch.orderId,
      format: watch.format,
      identity,
      quotaKey,
      ...(watch.afterSeq === undefined ? {} : { afterSeq: watch.afterSeq }),
      statusVersion: 0,
      closing: false,
      awaitingPong: false,
      inStep: false,
    };
    // An empty value stops the engine from echoing the client's first offer
    // (a `bearer.<jwt>` would otherwise come back in the 101 response).
    const headers = {
      "Sec-WebSocket-Protocol": watch.protocol ?? "",
      "X-Tracking-Node": options.nodeId,
    };
    if (server.upgrade(request, { data, headers })) return;
    quota.release(quotaKey);
    throw new EdgeError("bad_request", "expected a WebSocket upgrade");
  }

  return async function watchUpgrade(
    request: Request,
    server: Server<WatcherData>,
  ): Promise<Response | undefined> {
    try {
      await admit(request, server);
      return undefined;
    } catch (error) {
      const edgeError = EdgeError.from(error);
      const requestId = requestIdOf(request);
      metrics.upgradesRefused.inc({ code: edgeError.code });
      if (edgeError.code === "internal")
        logger.error({ err: error, requestId }, "watch request failed");
      else logger.debug({ code: edgeError.code, requestId }, "watch request refused");
      return errorResponse(edgeError, requestId);
    }
  };
}
