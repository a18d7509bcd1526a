// The customer app's side of the tracking protocol (proto/README.md,
// "Watching an order"), with nothing but fetch, WebSocket and the generated
// TrackingEvent, so it runs in Bun, in a browser (the live map bundles it)
// and in React Native. What to do after each close comes from the one table
// in core/protocol/tracking-protocol.ts.
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import {
  BEARER_SUBPROTOCOL_PREFIX,
  CLOSE,
  reconnectRule,
  TOKEN_REVOKED,
  TRACKING_SUBPROTOCOLS,
} from "../../core/protocol/tracking-protocol";
import {
  type TrackingEvent,
  TrackingEventSchema,
} from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { type BackoffOptions, createBackoff, retryAfterMs } from "../backoff";
import { ClientEvents } from "../client-events";

export type TrackingState = "looking up" | "connecting" | "open" | "waiting" | "stopped";

/** Why a client stopped for good. */
export type StopReason =
  /** close() was called. */
  | "closed"
  /** 4410: the order is DELIVERED or CANCELLED; its final status was the last event. */
  | "order ended"
  /**
   * The token expired (401, 4401) and there is no refreshToken, it failed,
   * or the token it gave was refused too.
   */
  | "token expired"
  /** As "token expired", after a 4401 whose reason is `token revoked` (its signing key was revoked). */
  | "token revoked"
  /** 403 or 4403: this token may not watch the order. */
  | "not allowed"
  /** 404: no such order. */
  | "not found"
  /** Another close whose rule is `never` (1008, 1009): a bug on one side. */
  | "refused";

/** The stop reasons of a token the client could not renew. */
type TokenStop = Extract<StopReason, "token expired" | "token revoked">;

export interface TrackingClientEvents {
  /** Every frame, parsed with the generated type (moved frames too). */
  event: TrackingEvent;
  state: TrackingState;
  /** The last event a client emits; `code` is the WebSocket close code when a close said so. */
  stopped: { reason: StopReason; code?: number };
  /** A socket that closed or a lookup that failed; the client backs off and tries again. */
  retrying: { code?: number; error?: unknown; delayMs: number };
}

export interface TrackingClientOptions {
  orderId: string;
  token: string;
  /** The gateway's base URL ("" in a page the gateway served: same origin). */
  gatewayUrl?: string;
  /**
   * Called when the token is refused (4401 at its exp or when its signing key
   * is revoked, 401 from the gateway); resolves to a newly issued one, not one
   * kept until its exp: a revoked key's token is refused before then. One the
   * gateway refuses as well stops the client rather than asking again.
   */
  refreshToken?: () => Promise<string>;
  /** Binary `tracking.v1.proto` frames or text `tracking.v2.json` frames (default). */
  frames?: "proto" | "json";
  /** The newest position seq the app already drew (a restored screen): nothing up to it is sent again. */
  afterSeq?: bigint;
  /** The owner's URL when the app already knows it (a node's base, or the lookup's socket URL): no first lookup. */
  nodeUrl?: string;
  backoff?: Partial<BackoffOptions>;
}

export interface TrackingClient {
  readonly state: TrackingState;
  /** The seq of the newest position received: what a reconnect asks to start after. */
  readonly afterSeq: bigint | undefined;
  /** The node's base URL the client last connected to. */
  readonly nodeUrl: string | undefined;
  on: ClientEvents<TrackingClientEvents>["on"];
  /** Stops for good (reason "closed"). */
  close(): void;
}

/** A node's order path, appended to a node's base URL (the gateway's lookup and `moved` frames name the node). */
function orderPath(orderId: string): string {
  return `/v1/orders/${encodeURIComponent(orderId)}/track`;
}

/** A node's base URL: the lookup names the order's socket, `moved` frames and the ops view name the node. */
function nodeBase(url: string, orderId: string): string {
  const path = orderPath(orderId);
  return url.endsWith(path) ? url.slice(0, -path.length) : url;
}

/** Moves in a row (without another frame between) followed at once; past that, moves back off. */
const MOVES_FOLLOWED_AT_ONCE = 3;

/** Starts following `orderId`: looks up its node, connects, and keeps following until it stops. */
export function followOrder(options: TrackingClientOptions): TrackingClient {
  const { orderId, gatewayUrl = "", refreshToken, frames = "json" } = options;
  const events = new ClientEvents<TrackingClientEvents>();
  const backoff = createBackoff(options.backoff);
  let token = options.token;
  let afterSeq = options.afterSeq;
  let nodeUrl = options.nodeUrl === undefined ? undefined : nodeBase(options.nodeUrl, orderId);
  let state: TrackingState = "looking up";
  let socket: WebSocket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let movesInARow = 0;
  /** Why the client last had to renew its token: the stop reason if the renewal does not take. */
  let tokenEnd: TokenStop = "token expired";
  /** The token refreshToken gave has not opened a socket yet. */
  let tokenUntried = false;

  function setState(next: TrackingState): void {
    if (state === "stopped") return;
    state = next;
    events.emit("state", next);
  }

  function stop(reason: StopReason, code?: number): void {
    if (state === "stopped") return;
    setState("stopped");
    clearTimeout(timer);
    const current = socket;
    socket = undefined;
    current?.close(1000);
    events.emit("stopped", code === undefined ? { reason } : { reason, code });
  }

  function retry(failure: { code?: number; error?: unknown }, atLeastMs = 0): void {
    if (state === "stopped") return;
    const delayMs = Math.max(backoff.next(), atLeastMs);
    setState("waiting");
    events.emit("retrying", { ...failure, delayMs });
    // The owner may have changed while this client was away: ask the gateway again.
    timer = setTimeout(() => void lookUp(), delayMs);
  }

  async function renewToken(end: TokenStop, code?: number): Promise<boolean> {
    tokenEnd = end;
    if (!refreshToken) {
      stop(end, code);
      return false;
    }
    try {
      token = await refreshToken();
      tokenUntried = true;
      return true;
    } catch {
      stop(end, code);
      return false;
    }
  }

  async function lookUp(): Promise<void> {
    setState("looking up");
    let answer: Response;
    try {
      answer = await fetch(`${gatewayUrl}${orderPath(orderId)}`, {
        headers: { authorization: `Bearer ${token}` },
      });
    } catch (error) {
      return retry({ error });
    }
    if (state === "stopped") return;
    if (answer.status === 401) {
      // The token just renewed is refused too (a provider that handed back its cached
      // token after a revocation): asking again would loop as fast as the gateway answers.
      if (tokenUntried) return stop(tokenEnd);
      if (await renewToken("token expired")) return lookUp();
      return;
    }
    if (answer.status === 403) return stop("not allowed");
    if (answer.status === 404) return stop("not found");
    if (!answer.ok) {
      const error = new Error(`tracking lookup answered ${answer.status}`);
      return retry({ error }, retryAfterMs(answer.headers.get("retry-after")));
    }
    // A captive portal or a broken proxy answers 200 too: what cannot be read is retried.
    let url: unknown;
    try {
      url = ((await answer.json()) as { url?: unknown } | null)?.url;
    } catch (error) {
      return retry({ error: new Error(`tracking lookup answer unreadable: ${String(error)}`) });
    }
    if (typeof url !== "string" || !/^wss?:\/\//.test(url))
      return retry({ error: new Error("tracking lookup answered no socket url") });
    connect(nodeBase(url, orderId));
  }

  function connect(base: string): void {
    if (state === "stopped") return;
    nodeUrl = base;
    setState("connecting");
    let current: WebSocket;
    try {
      const url = new URL(`${base}${orderPath(orderId)}`);
      if (afterSeq !== undefined) url.searchParams.set("afterSeq", afterSeq.toString());
      // Browsers cannot set headers: the token travels as a subprotocol beside the frame
      // format, and the server never echoes it.
      current = new WebSocket(url, [
        TRACKING_SUBPROTOCOLS[frames],
        `${BEARER_SUBPROTOCOL_PREFIX}${token}`,
      ]);
    } catch (error) {
      // A URL (a `moved` one included) or a token the WebSocket refuses: look the owner up again.
      retry({ error });
      return;
    }
    current.binaryType = "arraybuffer";
    socket = current;
    let movedTo: string | undefined;
    current.onopen = () => {
      if (socket !== current) return;
      tokenUntried = false;
      setState("open");
    };
    current.onmessage = (message) => {
      if (socket !== current) return;
      let event: TrackingEvent;
      try {
        // Fields added to TrackingEvent later must not break an app built before them.
        event =
          typeof message.data === "string"
            ? fromJsonString(TrackingEventSchema, message.data, { ignoreUnknownFields: true })
            : fromBinary(TrackingEventSchema, new Uint8Array(message.data as ArrayBuffer));
      } catch (error) {
        // Not thrown at the app (Bun ends the process on a throw here): this socket is given
        // up, and the owner looked up again; afterSeq and the snapshot keep nothing lost.
        socket = undefined;
        current.close(1000);
        retry({ error: new Error(`unreadable frame: ${String(error)}`) });
        return;
      }
      if (event.event.case === "moved") movedTo = event.event.value.url;
      else {
        backoff.reset();
        movesInARow = 0;
      }
      // The node sends a rider's positions in order (a restarted seq included): keep the newest.
      if (event.event.case === "position") afterSeq = event.event.value.seq;
      events.emit("event", event);
    };
    current.onclose = (closed) => {
      if (socket !== current) return;
      socket = undefined;
      void afterClose(closed, movedTo);
    };
  }

  async function afterClose(
    { code, reason }: { code: number; reason: string },
    movedTo: string | undefined,
  ): Promise<void> {
    switch (reconnectRule(code, movedTo)) {
      case "follow-moved":
        movesInARow += 1;
        if (movedTo !== undefined && movesInARow <= MOVES_FOLLOWED_AT_ONCE) return connect(movedTo);
        return retry({ code });
      case "refresh-token": {
        // 4401 at exp or for a revoked signing key: a new token either way; the reason tells which.
        const end = reason === TOKEN_REVOKED.reason ? "token revoked" : "token expired";
        if (await renewToken(end, code)) void lookUp();
        return;
      }
      case "never":
        if (code === CLOSE.orderEnded.code) return stop("order ended", code);
        return stop(code === CLOSE.notAllowed.code ? "not allowed" : "refused", code);
      default:
        return retry({ code });
    }
  }

  if (nodeUrl === undefined) void lookUp();
  else connect(nodeUrl);
  return {
    get state() {
      return state;
    },
    get afterSeq() {
      return afterSeq;
    },
    get nodeUrl() {
      return nodeUrl;
    },
    on: (type, listener) => events.on(type, listener),
    close: () => stop("closed"),
  };
}
