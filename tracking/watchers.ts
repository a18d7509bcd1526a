import type { ServerWebSocket } from "bun";
import type { Identity } from "../core/auth/identity";
import { whenTokenExpires } from "../core/auth/token-expiry";
import { movedEventJson } from "../core/messages/tracking-events";
import { followsInOrder, type SeqMark } from "../core/position/rider-position";
import {
  CLOSE,
  type CloseCode,
  type FrameFormat,
  TRACKING_SUBPROTOCOLS,
} from "../core/protocol/tracking-protocol";
import { eventFrame, type OutgoingFrame, type RoutedEvent } from "./frames";
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
   * While the socket is in step, its order's mark stands for it.
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
  /**
   * Subscribed to its order's topic for its format: the order's live
   * positions reach it through the engine's own fan-out, not one send each.
   */
  inStep: boolean;
  /** Stops the timer that closes the socket when its token expires. */
  cancelExpiry?: () => void;
}

export type WatcherSocket = ServerWebSocket<WatcherData>;

export interface BackpressureLimits {
  readonly conflateAboveBytes: number;
  readonly closeAboveBytes: number;
  readonly closeAfterStuckMs: number;
}

type PositionEvent = Extract<RoutedEvent, { kind: "position" }>;

/** One watched order: its sockets, and the topics its in-step sockets share. */
interface WatchedOrder {
  readonly sockets: Set<WatcherSocket>;
  /** The engine topic of each format (`<format> <orderId>`: order ids hold no spaces). */
  readonly topics: Readonly<Record<FrameFormat, string>>;
  /** In-step sockets per format, and in all. */
  readonly inStep: Record<FrameFormat, number>;
  members: number;
  /**
   * The newest position that followed the order's last one: every in-step
   * socket has seen exactly the positions up to it, so one ordering check
   * per event stands for all of them.
   */
  mark?: PositionEvent;
}

const FORMATS = Object.keys(TRACKING_SUBPROTOCOLS) as FrameFormat[];

/**
 * The sockets watching each order on this node, and how a frame reaches
 * them. Live positions, nearly every frame, go out once per event and
 * format through an engine topic per order (`server.publish`: the engine
 * writes the one frame to every subscriber in native code) to the sockets
 * that are in step: not congested, and having seen exactly the positions
 * the order has sent. Per socket that costs one backpressure check. Every
 * other socket is served one send at a time with its own ordering and
 * backpressure state, and rejoins once it is in step again: over the soft
 * bound a socket gets only the newest position when it drains (statuses
 * always go); over the hard bound, or congested too long, it is closed.
 * Statuses, geofence and moved frames (a few per order) go one send each.
 */
export function createWatchers(options: {
  metrics: TrackingMetrics;
  limits: BackpressureLimits;
  /** The live-age bound after which a rider's seq may restart (core/position/rider-position.ts). */
  seqRestartAfterMs: number;
  /** The engine's fan-out: one frame to every subscriber of a topic. */
  publish: (topic: string, data: string | Uint8Array) => void;
  now?: () => number;
}) {
  const { metrics, limits, seqRestartAfterMs, publish, now = Date.now } = options;
  const byOrder = new Map<string, WatchedOrder>();
  const sentOf = {
    position: metrics.framesSent.labels({ type: "position" }),
    status: metrics.framesSent.labels({ type: "status" }),
    moved: metrics.framesSent.labels({ type: "moved" }),
    geofence: metrics.framesSent.labels({ type: "geofence" }),
  } as const;

  function join(ws: WatcherSocket, order: WatchedOrder): void {
    const { data } = ws;
    if (data.inStep || data.closing || data.pending || data.congestedSince !== undefined) return;
    if (data.lastPosition !== order.mark || !ws.subscribe(order.topics[data.format])) return;
    data.inStep = true;
    order.inStep[data.format] += 1;
    order.members += 1;
  }

  /** Out of the topic, carrying the order's mark as its own. */
  function leave(ws: WatcherSocket, order: WatchedOrder | undefined): void {
    const { data } = ws;
    if (!data.inStep || !order) return;
    data.inStep = false;
    order.inStep[data.format] -= 1;
    order.members -= 1;
    // Frames already published to it are written first (the engine drains them on unsubscribe).
    ws.unsubscribe(order.topics[data.format]);
    data.lastPosition = order.mark;
    data.seqRider = order.mark?.riderId;
  }

  function close(ws: WatcherSocket, close: CloseCode, movedUrl?: string): void {
    if (ws.data.closing) return;
    leave(ws, byOrder.get(ws.data.orderId));
    ws.data.closing = true;
    const moved =
      movedUrl && eventFrame(ws.data.orderId, movedEventJson(ws.data.orderId, movedUrl));
    if (moved) {
      write(ws, moved, now());
      sentOf.moved.inc();
    }
    metrics.socketsClosed.inc({ reason: close.reason });
    ws.close(close.code, close.reason);
  }

  function write(ws: WatcherSocket, frame: OutgoingFrame, at: number): void {
    const result = ws.send(frame.data(ws.data.format));
    const { event } = frame;
    if (event.kind === "position") {
      ws.data.lastPosition = event;
      ws.data.seqRider = event.riderId;
    } else if (event.kind === "status") {
      ws.data.statusVersion = event.version;
    }
    if (result === -1) ws.data.congestedSince ??= at;
  }

  /** One socket, one frame, by its own state; true when the frame was written. */
  function sendTo(ws: WatcherSocket, frame: OutgoingFrame, at: number): boolean {
    const data = ws.data;
    if (data.closing) return false;
    const { event } = frame;
    const position = event.kind === "position" ? event : undefined;
    // A position for one socket (a snapshot) is judged from what it has seen: the order's mark.
    if (position && data.inStep) leave(ws, byOrder.get(data.orderId));
    // The order's rider changed: the new rider's seq counts from its own start.
    const sameRider = data.seqRider === undefined || data.seqRider === position?.riderId;
    const last = sameRider ? data.lastPosition : undefined;
    if (position && last && !followsInOrder(position, last, seqRestartAfterMs)) return false;
    if (event.kind === "status" && event.version <= data.statusVersion) return false;
    const buffered = ws.getBufferedAmount();
    const stuckFor = data.congestedSince === undefined ? 0 : at - data.congestedSince;
    if (buffered > limits.closeAboveBytes || stuckFor > limits.closeAfterStuckMs) {
      close(ws, CLOSE.slowConsumer);
      return false;
    }
    if (position && buffered > limits.conflateAboveBytes) {
      if (data.pending) metrics.framesConflated.inc();
      data.pending = frame;
      data.congestedSince ??= at;
      return false;
    }
    write(ws, frame, at);
    return true;
  }

  function armExpiry(ws: WatcherSocket): void {
    ws.data.cancelExpiry = whenTokenExpires(
      ws.data.identity.exp,
      () => {
        if (!ws.data.closing) close(ws, CLOSE.tokenExpired);
      },
      now,
    );
  }

  return {
    add(ws: WatcherSocket): void {
      const { afterSeq, orderId } = ws.data;
      // The client has seen nothing the ingest received after now, whatever its seq (a restart).
      if (afterSeq !== undefined)
        ws.data.lastPosition = { seq: afterSeq, receivedAtMs: now() - seqRestartAfterMs };
      let order = byOrder.get(orderId);
      if (!order) {
        order = {
          sockets: new Set(),
          topics: {
            json: `json ${orderId}`,
            proto: `proto ${orderId}`,
            legacyJson: `legacyJson ${orderId}`,
          },
          inStep: { json: 0, proto: 0, legacyJson: 0 },
          members: 0,
        };
        byOrder.set(orderId, order);
        metrics.ordersWatched.inc();
      }
      order.sockets.add(ws);
      metrics.sockets.inc();
      armExpiry(ws);
      join(ws, order);
    },

    /** Forgets a socket; false when it was never added (refused at open). */
    remove(ws: WatcherSocket): boolean {
      const order = byOrder.get(ws.data.orderId);
      if (!order?.sockets.has(ws)) return false;
      leave(ws, order);
      ws.data.cancelExpiry?.();
      order.sockets.delete(ws);
      metrics.sockets.dec();
      if (order.sockets.size === 0) {
        byOrder.delete(ws.data.orderId);
        metrics.ordersWatched.dec();
      }
      return true;
    },

    forOrder: (orderId: string): ReadonlySet<WatcherSocket> =>
      byOrder.get(orderId)?.sockets ?? new Set(),
    orders: (): string[] => [...byOrder.keys()],
    all: (): WatcherSocket[] => [...byOrder.values()].flatMap((order) => [...order.sockets]),

    /** One frame for one socket (a snapshot, a status), judged by the socket's own state. */
    deliver(ws: WatcherSocket, frame: OutgoingFrame): void {
      if (sendTo(ws, frame, now())) sentOf[frame.event.kind].inc();
    },

    /**
     * One event for every watcher of its order. A position goes once per
     * format to the in-step sockets (after each one's backpressure check:
     * a congested one leaves the topic) when it follows the order's mark,
     * and to every other socket one send at a time; counted and its lag
     * observed once. Other events go one send per socket.
     */
    broadcast(orderId: string, frame: OutgoingFrame): void {
      const order = byOrder.get(orderId);
      if (!order) return;
      const at = now();
      const { event } = frame;
      if (event.kind !== "position") {
        let sent = 0;
        for (const ws of order.sockets) if (sendTo(ws, frame, at)) sent += 1;
        if (sent > 0) sentOf[event.kind].inc(sent);
        return;
      }
      if (order.members > 0)
        for (const ws of order.sockets) {
          if (!ws.data.inStep) continue;
          const buffered = ws.getBufferedAmount();
          if (buffered === 0) continue;
          ws.data.congestedSince ??= at;
          if (
            buffered > limits.conflateAboveBytes ||
            at - ws.data.congestedSince > limits.closeAfterStuckMs
          )
            leave(ws, order);
        }
      let sent = 0;
      const mark = order.mark;
      if (
        !mark ||
        mark.riderId !== event.riderId ||
        followsInOrder(event, mark, seqRestartAfterMs)
      ) {
        order.mark = event;
        if (order.members > 0) {
          for (const format of FORMATS)
            if (order.inStep[format] > 0) publish(order.topics[format], frame.data(format));
          sent = order.members;
        }
      }
      if (order.members < order.sockets.size)
        for (const ws of order.sockets) {
          if (ws.data.inStep) continue;
          if (sendTo(ws, frame, at)) sent += 1;
          join(ws, order);
        }
      if (sent === 0) return;
      sentOf.position.inc(sent);
      if (!frame.snapshot)
        metrics.pingToFrameLag.observe(Math.max(0, at - event.receivedAtMs) / 1000);
    },

    /** The socket's buffer drained: send the newest held-back position, and back in step if it can. */
    drained(ws: WatcherSocket): void {
      if (ws.getBufferedAmount() <= limits.conflateAboveBytes) ws.data.congestedSince = undefined;
      const pending = ws.data.pending;
      ws.data.pending = undefined;
      if (pending && !ws.data.closing) {
        write(ws, pending, now());
        sentOf.position.inc();
      }
      const order = byOrder.get(ws.data.orderId);
      if (order && ws.data.congestedSince === undefined) join(ws, order);
    },

    close,

    /** Drops a socket without a closing handshake (its peer stopped answering). */
    drop(ws: WatcherSocket, reason: string): void {
      if (ws.data.closing) return;
      leave(ws, byOrder.get(ws.data.orderId));
      ws.data.closing = true;
      metrics.socketsClosed.inc({ reason });
      ws.terminate();
    },
  };
}

export type Watchers = ReturnType<typeof createWatchers>;
