/**
 * The tracking WebSocket protocol as clients see it: the subprotocols that
 * pick a frame format, and every close code with what a client must do next.
 * The server, the live map and the client libraries all read this one table.
 * 4000-4999 are ours; 1008/1009/1012/1013 are the RFC's.
 */

/**
 * The frame subprotocols. A name is `tracking.v<N>.<encoding>`, and N is
 * the version of that encoding's frames: it goes up when a client of the
 * previous version could no longer read the frames (adding a field does
 * not: clients ignore unknown fields). The server keeps answering a retired
 * version's name until no supported app offers it any more.
 * - `tracking.v2.json`: text frames, each the proto3 JSON mapping of a
 *   `TrackingEvent`: any protobuf runtime parses them with the generated type.
 * - `tracking.v1.proto`: binary frames, each a `TrackingEvent`; the same
 *   event as the JSON frame, so they never needed a second version.
 * - `tracking.v1.json` (deprecated): the first JSON frames, a shape of their
 *   own (`{"type": "position", "heading", "recordedAt", ...}`) that no
 *   generated type reads; served, converted from the same event, to clients
 *   built before v2 and to clients that offer no frame subprotocol.
 */
export const TRACKING_SUBPROTOCOLS = {
  json: "tracking.v2.json",
  proto: "tracking.v1.proto",
  legacyJson: "tracking.v1.json",
} as const;

export type FrameFormat = keyof typeof TRACKING_SUBPROTOCOLS;

const FORMAT_BY_NAME = new Map<string, FrameFormat>(
  (Object.entries(TRACKING_SUBPROTOCOLS) as [FrameFormat, string][]).map(([format, name]) => [
    name,
    format,
  ]),
);

/** The prefix of the subprotocol that carries a token (`bearer.<jwt>`): browsers cannot set headers. */
export const BEARER_SUBPROTOCOL_PREFIX = "bearer.";

/**
 * The rule a server answers a handshake's `Sec-WebSocket-Protocol` offers by:
 * - the first frame subprotocol the client offered (its order is its preference);
 * - nothing offered: `tracking.v1.json` frames, as before there was a
 *   choice, and no subprotocol in the answer;
 * - offers, but no frame subprotocol among them (`bearer.<jwt>` alone, or
 *   only names this server does not serve): undefined, and the server
 *   refuses the handshake (400) before upgrading. A client that offers
 *   protocols requires one of them back (browsers and most RFC 6455 clients
 *   fail a 101 that names none), and echoing another offer is no way out: a
 *   `bearer.<jwt>` echoed back would put the token in the 101 response,
 *   where proxies and devtools log it. So a browser sending its token as a
 *   `bearer.` subprotocol must offer a frame subprotocol beside it.
 */
export function chooseSubprotocol(
  offered: readonly string[],
): { readonly format: FrameFormat; readonly protocol?: string } | undefined {
  for (const protocol of offered) {
    const format = FORMAT_BY_NAME.get(protocol);
    if (format) return { format, protocol };
  }
  return offered.length === 0 ? { format: "legacyJson" } : undefined;
}

/**
 * What a client does after a close:
 * - `follow-moved`: reconnect at once to the url of the `moved` frame sent just before;
 * - `backoff`: reconnect after a backoff with jitter, with `?afterSeq=` of the newest position;
 * - `refresh-token`: get a fresh token, then reconnect;
 * - `never`: do not reconnect (a bug in the client, or nothing more to see).
 */
export type ReconnectRule = "follow-moved" | "backoff" | "refresh-token" | "never";

export interface CloseCode {
  readonly code: number;
  readonly reason: string;
  readonly reconnect: ReconnectRule;
}

export const CLOSE = {
  /** The order is served by another node. */
  moved: { code: 4001, reason: "moved", reconnect: "follow-moved" },
  /** The socket could not keep up with its frames. */
  slowConsumer: { code: 4008, reason: "slow consumer", reconnect: "backoff" },
  /**
   * The node is draining for a deploy, or stopping because another node took
   * its id; a `moved` frame names the new owner when there is one.
   */
  draining: { code: 1012, reason: "server restarting", reconnect: "follow-moved" },
  /** The token expired while watching. */
  tokenExpired: { code: 4401, reason: "token expired", reconnect: "refresh-token" },
  /** Clients only listen; a frame from one is a protocol error. */
  unexpectedMessage: { code: 1008, reason: "clients do not send frames", reconnect: "never" },
  /**
   * A frame over the node's incoming limit: the engine closes the socket as
   * soon as the frame's header announces the length, before buffering it
   * (its reason text reads "Received too big message").
   */
  messageTooBig: { code: 1009, reason: "message too big", reconnect: "never" },
  /**
   * The order is over (DELIVERED or CANCELLED): the final status frame was
   * the last frame. Reconnecting gets the same status and the same close.
   */
  orderEnded: { code: 4410, reason: "order ended", reconnect: "never" },
  /** The order no longer allows this watcher (a rider watching an order given to another rider). */
  notAllowed: { code: 4403, reason: "not allowed", reconnect: "never" },
  /**
   * The node cannot serve the order right now: it could not give the watcher
   * its snapshot (its Redis is unreachable), or the order's record vanished
   * while the order was under way (Redis lost its data). Coming back gets the
   * order again, or a 404 if it is gone.
   */
  unavailable: { code: 1013, reason: "try again later", reconnect: "backoff" },
} as const satisfies Record<string, CloseCode>;

/**
 * 4401 too, for a token whose signing key the identity provider revoked
 * (dropped from its JWKS) while watching: the client's next step is the same
 * as at exp (a fresh token, signed with a key still published); the reason
 * tells the two apart in logs and in `edge_tracking_sockets_closed_total`.
 */
export const TOKEN_REVOKED: CloseCode = { ...CLOSE.tokenExpired, reason: "token revoked" };

const BY_CODE = new Map<number, CloseCode>(
  Object.values(CLOSE).map((close) => [close.code, close]),
);

/**
 * The rule for a close code a client received. A `draining` close without a
 * `moved` frame, and any code not in the table (1006 when the network
 * dropped, 1011, ...), mean reconnect with backoff.
 */
export function reconnectRule(code: number, movedUrl: string | undefined): ReconnectRule {
  const rule = BY_CODE.get(code)?.reconnect ?? "backoff";
  return rule === "follow-moved" && movedUrl === undefined ? "backoff" : rule;
}
