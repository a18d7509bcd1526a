import {
  BEARER_SUBPROTOCOL_PREFIX,
  reconnectRule,
  TRACKING_SUBPROTOCOLS,
} from "../../core/protocol/tracking-protocol";

/** How one connection of a customer went. */
export interface TrackAttempt {
  /** `direct`: the public route (the balancer asks the ring); `named`: a URL the edge named. */
  readonly path: "direct" | "named";
  readonly startedAt: number;
  /**
   * `owner`: the first frame was the order's status (the node owns it);
   * `moved`: the node sent the watcher elsewhere; `refused`: no WebSocket
   * (the balancer or node answered an error); `dropped`: opened, then
   * closed before any frame; undefined while pending.
   */
  outcome?: "owner" | "moved" | "refused" | "dropped";
}

export type TokenCarrier = "header" | "subprotocol" | "query";

export interface TrackingCustomer {
  readonly orderId: string;
  readonly attempts: readonly TrackAttempt[];
  /** True while a socket is open on the owner. */
  readonly watching: boolean;
  close(): void;
}

/**
 * A customer app watching one order through the edge, following the
 * protocol's reconnect rules (core/protocol/tracking-protocol.ts): a
 * `moved` frame is followed at once to the URL it names; any other drop
 * reconnects to the public route after a short backoff with jitter. Every
 * connection is recorded, so tests can say who was bounced.
 */
export function startTrackingCustomer(options: {
  /** wss://host:port of the edge. */
  edgeUrl: string;
  orderId: string;
  token: string;
  carrier: TokenCarrier;
  /** The trust anchor for the edge's certificate. */
  ca: string;
  /** The URL to open first (a gateway lookup's answer); default the public route. */
  firstUrl?: string;
  backoffMs?: number;
}): TrackingCustomer {
  const { edgeUrl, orderId, token, carrier, ca, backoffMs = 150 } = options;
  const attempts: TrackAttempt[] = [];
  const trackPath = `/v1/orders/${encodeURIComponent(orderId)}/track`;
  let stopped = false;
  let watching = false;
  let socket: WebSocket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function open(url: string, path: TrackAttempt["path"]): void {
    if (stopped) return;
    const attempt: TrackAttempt = { path, startedAt: Date.now() };
    attempts.push(attempt);
    const target = new URL(url);
    if (carrier === "query") target.searchParams.set("access_token", token);
    const protocols: string[] = [TRACKING_SUBPROTOCOLS.json];
    if (carrier === "subprotocol") protocols.push(`${BEARER_SUBPROTOCOL_PREFIX}${token}`);
    // Bun's constructor takes options (headers, TLS) where the DOM's takes protocols.
    const current = new WebSocket(target.href, {
      protocols,
      headers: carrier === "header" ? { authorization: `Bearer ${token}` } : {},
      tls: { ca },
    } as unknown as string[]);
    socket = current;
    let opened = false;
    let movedTo: string | undefined;
    current.addEventListener("open", () => {
      opened = true;
    });
    current.addEventListener("message", (event) => {
      // tracking.v2.json: a TrackingEvent in the proto3 JSON mapping.
      const frame = JSON.parse(String(event.data)) as { moved?: { url: string } };
      if (frame.moved) movedTo = `${frame.moved.url}${trackPath}`;
      if (attempt.outcome !== undefined) return;
      attempt.outcome = frame.moved ? "moved" : "owner";
      watching = attempt.outcome === "owner";
    });
    current.addEventListener("close", (event) => {
      if (socket !== current) return;
      watching = false;
      attempt.outcome ??= opened ? "dropped" : "refused";
      if (stopped) return;
      const rule = reconnectRule(event.code, movedTo);
      if (rule === "never" || rule === "refresh-token") return;
      if (rule === "follow-moved" && movedTo) return open(movedTo, "named");
      const delay = backoffMs / 2 + Math.random() * (backoffMs / 2);
      timer = setTimeout(() => open(`${edgeUrl}${trackPath}`, "direct"), delay);
    });
  }

  open(options.firstUrl ?? `${edgeUrl}${trackPath}`, options.firstUrl ? "named" : "direct");
  return {
    orderId,
    attempts,
    get watching() {
      return watching;
    },
    close() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
}
