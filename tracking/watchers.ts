import type { ServerWebSocket } from "bun";
import type { Identity } from "../core/auth/identity";
import { movedEventJson } from "../core/messages/tracking-events";
import { followsInOrder, type SeqMark } from "../core/position/rider-position";
import { CLOSE, type CloseCode, type FrameFormat } from "../core/protocol/tracking-protocol";
import { eventFrame, type OutgoingFrame } from "./frames";
import type { TrackingMetrics } from "./metrics";

export interface WatcherData {
  readonly orderId: string;
  readonly format: FrameFormat;
  readonly identity: Identity;
  /** The identity's share of sockets this socket holds (released when it closes). */
  readonly quotaKey: string;
  /** `?afterSeq=`: the seq of the newest position the client already has. */
  readonly afterSeq?: bigint;
  /**
   * The newest position sent (its seq, and when the ingest received it):
   * positions not following it in the rider's order (a late snapshot, a
   * replay) are skipped. Until one is sent, the client's `afterSeq`, if any.
   */
  lastPosition?: SeqMark;
  /** Whose seq `lastPosition` is (a rider's pings count their own seq; unknown after `?afterSeq=`). */
  seqRider?: string;
  /** Newest status version sent; a snapshot's status older than a live one is skipped. */
  statusVersion: number;
  /** A ping went out and no pong has come back yet. */
  awaitingPong: boolean;
  /** The newest position held back while the socket is congested. */
  pending?: OutgoingFrame;
  congestedSince?: number;
  closing: boolean;
}

export type WatcherSocket = ServerWebSocket<WatcherData>;

export interface BackpressureLimits {
  readonly conflateAboveBytes: number;
  readonly closeAboveBytes: number;
  readonly closeAfterStuckMs: number;
}

/**
 * The sockets watching each order on this node, and how a frame reaches
 * one: encoded once per event (the caller's OutgoingFrame), sent per socket
 * so that a slow phone only ever holds back itself. Over the soft bound a
 * socket gets only the newest position once it drains (statuses always go);
 * over the hard bound, or congested too long, it is closed.
 */
export function createWatchers(options: {
  metrics: TrackingMetrics;
  limits: BackpressureLimits;
  /** The live-age bound after which a rider's seq may restart (core/position/rider-position.ts). */
  seqRestartAfterMs: number;
  now?: () => number;
}) {
  const { metrics, limits, seqRestartAfterMs, now = Date.now } = options;
  const byOrder = new Map<string, Set<WatcherSocket>>();

  function close(ws: WatcherSocket, close: CloseCode, movedUrl?: string): void {
    if (ws.data.closing) return;
    ws.data.closing = true;
    const moved =
      movedUrl && eventFrame(ws.data.orderId, movedEventJson(ws.data.orderId, movedUrl));
    if (moved) write(ws, moved);
    metrics.socketsClosed.inc({ reason: close.reason });
    ws.close(close.code, close.reason);
  }

  function write(ws: WatcherSocket, frame: OutgoingFrame): void {
    const result = ws.send(frame.data(ws.data.format));
    const { event } = frame;
    metrics.framesSent.inc({ type: event.kind });
    if (event.kind === "position") {
      ws.data.lastPosition = event;
      ws.data.seqRider = event.riderId;
      if (!frame.snapshot)
        metrics.pingToFrameLag.observe(Math.max(0, now() - event.receivedAtMs) / 1000);
    } else if (event.kind === "status") {
      ws.data.statusVersion = event.version;
    }
    if (result === -1) ws.data.congestedSince ??= now();
  }

  return {
    add(ws: WatcherSocket): void {
      const { afterSeq } = ws.data;
      // The client has seen nothing the ingest received after now, whatever its seq (a restart).
      if (afterSeq !== undefined)
        ws.data.lastPosition = { seq: afterSeq, receivedAtMs: now() - seqRestartAfterMs };
      let sockets = byOrder.get(ws.data.orderId);
      if (!sockets) {
        sockets = new Set();
        byOrder.set(ws.data.orderId, sockets);
        metrics.ordersWatched.inc();
      }
      sockets.add(ws);
      metrics.sockets.inc();
    },

    /** Forgets a socket; false when it was never added (refused at open). */
    remove(ws: WatcherSocket): boolean {
      const sockets = byOrder.get(ws.data.orderId);
      if (!sockets?.delete(ws)) return false;
      metrics.sockets.dec();
      if (sockets.size === 0) {
        byOrder.delete(ws.data.orderId);
        metrics.ordersWatched.dec();
      }
      return true;
    },

    forOrder: (orderId: string): ReadonlySet<WatcherSocket> => byOrder.get(orderId) ?? new Set(),
    orders: (): string[] => [...byOrder.keys()],
    all: (): WatcherSocket[] => [...byOrder.values()].flatMap((sockets) => [...sockets]),

    deliver(ws: WatcherSocket, frame: OutgoingFrame): void {
      const data = ws.data;
      if (data.closing) return;
      if (data.identity.exp * 1000 <= now()) {
        close(ws, CLOSE.tokenExpired);
        return;
      }
      const { event } = frame;
      const position = event.kind === "position" ? event : undefined;
      // The order's rider changed: the new rider's seq counts from its own start.
      const sameRider = data.seqRider === undefined || data.seqRider === position?.riderId;
      const last = sameRider ? data.lastPosition : undefined;
      if (position && last && !followsInOrder(position, last, seqRestartAfterMs)) return;
      if (event.kind === "status" && event.version <= data.statusVersion) return;
      const buffered = ws.getBufferedAmount();
      const stuckFor = data.congestedSince === undefined ? 0 : now() - data.congestedSince;
      if (buffered > limits.closeAboveBytes || stuckFor > limits.closeAfterStuckMs) {
        close(ws, CLOSE.slowConsumer);
        return;
      }
      if (position && buffered > limits.conflateAboveBytes) {
        if (data.pending) metrics.framesConflated.inc();
        data.pending = frame;
        data.congestedSince ??= now();
        return;
      }
      write(ws, frame);
    },

    /** The socket's buffer drained: send the newest held-back position. */
    drained(ws: WatcherSocket): void {
      if (ws.getBufferedAmount() <= limits.conflateAboveBytes) ws.data.congestedSince = undefined;
      const pending = ws.data.pending;
      ws.data.pending = undefined;
      if (pending && !ws.data.closing) write(ws, pending);
    },

    close,

    /** Drops a socket without a closing handshake (its peer stopped answering). */
    drop(ws: WatcherSocket, reason: string): void {
      if (ws.data.closing) return;
      ws.data.closing = true;
      metrics.socketsClosed.inc({ reason });
      ws.terminate();
    },
  };
}

export type Watchers = ReturnType<typeof createWatchers>;
