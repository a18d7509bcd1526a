// One followed order's WebSocket, with the protocol's reconnect rules from
// core/protocol/tracking-protocol.ts: follow `moved` at once, back off with
// jitter otherwise, stop on an expired token or a "never" close. Positions
// already drawn are skipped on reconnect with ?afterSeq=.
import { reconnectRule, TRACKING_SUBPROTOCOLS } from "../../../core/protocol/tracking-protocol";
import { type MapEvent, parseTrackingFrame } from "./tracking-events";

const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

export type SocketState = "connecting" | "open" | "waiting" | "token expired" | "stopped";

export interface OrderSocket {
  readonly state: SocketState;
  close(): void;
}

/**
 * Watches `orderId` on the node at `nodeUrl` (ws://host:port). `resolveNode`
 * names the owner again before a backoff reconnect (the node may be gone).
 */
export function watchOrder(options: {
  orderId: string;
  nodeUrl: string;
  token: string;
  onEvent: (event: MapEvent) => void;
  onState: (state: SocketState) => void;
  resolveNode?: () => Promise<string | undefined>;
}): OrderSocket {
  const { orderId, token, onEvent, onState, resolveNode } = options;
  let afterSeq: bigint | undefined;
  let backoffMs = FIRST_BACKOFF_MS;
  let state: SocketState = "connecting";
  let socket: WebSocket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function setState(next: SocketState): void {
    state = next;
    onState(next);
  }

  function connect(nodeUrl: string): void {
    setState("connecting");
    const url = new URL(`${nodeUrl}/v1/orders/${encodeURIComponent(orderId)}/track`);
    if (afterSeq !== undefined) url.searchParams.set("afterSeq", afterSeq.toString());
    const current = new WebSocket(url, [TRACKING_SUBPROTOCOLS.json, `bearer.${token}`]);
    socket = current;
    let movedTo: string | undefined;
    current.onopen = () => setState("open");
    current.onmessage = (message) => {
      const event = parseTrackingFrame(String(message.data));
      if (!event) return;
      backoffMs = FIRST_BACKOFF_MS;
      // The node sends a rider's positions in order (a restarted seq included): keep the newest.
      if (event.kind === "position") afterSeq = event.seq;
      if (event.kind === "moved") movedTo = event.url;
      onEvent(event);
    };
    current.onclose = (closed) => {
      if (socket !== current || state === "stopped") return;
      socket = undefined;
      const rule = reconnectRule(closed.code, movedTo);
      if (rule === "follow-moved" && movedTo) return connect(movedTo);
      if (rule === "refresh-token") return setState("token expired");
      if (rule === "never") return setState("stopped");
      setState("waiting");
      const delay = backoffMs / 2 + Math.random() * (backoffMs / 2);
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
      timer = setTimeout(async () => {
        const owner = resolveNode ? await resolveNode().catch(() => undefined) : undefined;
        if (state === "waiting") connect(owner ?? nodeUrl);
      }, delay);
    };
  }

  connect(options.nodeUrl);
  return {
    get state() {
      return state;
    },
    close() {
      setState("stopped");
      clearTimeout(timer);
      socket?.close(1000);
      socket = undefined;
    },
  };
}
