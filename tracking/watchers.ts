import { type KeyRevocations, whenTokenEnds } from "../core/auth/token-lifetime";
import { movedEventJson } from "../core/messages/tracking-events";
import { followsInOrder } from "../core/position/rider-position";
import { CLOSE, type CloseCode, TOKEN_REVOKED } from "../core/protocol/tracking-protocol";
import { eventFrame, type OutgoingFrame } from "./frames";
import type { TrackingMetrics } from "./metrics";
import {
  createWatchedOrder,
  joinTopic,
  leaveTopic,
  publishToTopics,
  type WatchedOrder,
} from "./order-topics";
import type { WatcherSocket } from "./watcher-socket";

export interface BackpressureLimits {
  readonly conflateAboveBytes: number;
  readonly closeAboveBytes: number;
  readonly closeAfterStuckMs: number;
}

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
  /** The token verifier's: a socket ends when the key that signed its token is revoked. */
  revocations: KeyRevocations;
  now?: () => number;
}) {
  const { metrics, limits, seqRestartAfterMs, publish, revocations, now = Date.now } = options;
  const byOrder = new Map<string, WatchedOrder>();
  const sentOf = {
    position: metrics.framesSent.labels({ type: "position" }),
    status: metrics.framesSent.labels({ type: "status" }),
    moved: metrics.framesSent.labels({ type: "moved" }),
    geofence: metrics.framesSent.labels({ type: "geofence" }),
  } as const;

  function close(ws: WatcherSocket, close: CloseCode, movedUrl?: string): void {
    if (ws.data.closing) return;
    leaveTopic(ws, byOrder.get(ws.data.orderId));
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
    if (position && data.inStep) leaveTopic(ws, byOrder.get(data.orderId));
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

  function armTokenEnd(ws: WatcherSocket): void {
    ws.data.cancelTokenEnd = whenTokenEnds(
      ws.data.identity,
      revocations,
      (end) => {
        if (!ws.data.closing) close(ws, end === "expired" ? CLOSE.tokenExpired : TOKEN_REVOKED);
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
        order = createWatchedOrder(orderId);
        byOrder.set(orderId, order);
        metrics.ordersWatched.inc();
      }
      order.sockets.add(ws);
      metrics.sockets.inc();
      armTokenEnd(ws);
      joinTopic(ws, order);
    },

    /** Forgets a socket; false when it was never added (refused at open). */
    remove(ws: WatcherSocket): boolean {
      const order = byOrder.get(ws.data.orderId);
      if (!order?.sockets.has(ws)) return false;
      leaveTopic(ws, order);
      ws.data.cancelTokenEnd?.();
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
            leaveTopic(ws, order);
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
          publishToTopics(order, frame, publish);
          sent = order.members;
        }
      }
      if (order.members < order.sockets.size)
        for (const ws of order.sockets) {
          if (ws.data.inStep) continue;
          if (sendTo(ws, frame, at)) sent += 1;
          joinTopic(ws, order);
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
      if (order && ws.data.congestedSince === undefined) joinTopic(ws, order);
    },

    close,

    /** Drops a socket without a closing handshake (its peer stopped answering). */
    drop(ws: WatcherSocket, reason: string): void {
      if (ws.data.closing) return;
      leaveTopic(ws, byOrder.get(ws.data.orderId));
      ws.data.closing = true;
      metrics.socketsClosed.inc({ reason });
      ws.terminate();
    },
  };
}

export type Watchers = ReturnType<typeof createWatchers>;
