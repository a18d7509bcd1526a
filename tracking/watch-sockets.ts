import type { WebSocketHandler } from "bun";
import type { Logger } from "pino";
import { CLOSE } from "../core/protocol/tracking-protocol";
import type { TrackingNode } from "../core/tracking-ring/tracking-ring";
import type { TrackingMetrics } from "./metrics";
import type { OrderSubscriptions } from "./order-subscriptions";
import type { OrderViews } from "./order-views";
import type { OrderWatch } from "./order-watch";
import type { SocketQuota } from "./socket-quota";
import type { WatcherData } from "./watcher-socket";
import type { Watchers } from "./watchers";

// The close reason the engine gives a socket it closed for a frame over maxPayloadLength.
const ENGINE_TOO_BIG_REASON = "Received too big message";
// Close codes a client or the network gives, each its own label value; any other is "other" (bounded).
const CLIENT_CLOSE_CODES = new Set([1000, 1001, 1005, 1006]);

/**
 * The WebSocket side of a watch, from the upgrade (tracking/watch-upgrade.ts)
 * to the close: a socket whose order the ring gives another node is sent
 * there; otherwise it is counted, holds a reference on its order's Redis
 * subscription and gets its snapshot. Clients only listen: any frame from
 * one closes it. The heartbeat (tracking/heartbeat.ts) and the engine's
 * drain callback feed the watchers' backpressure state. Every open and
 * close is counted and logged at debug (who closed it, code, reason).
 */
export function createWatchSockets(options: {
  /** Send buffer above which a socket is closed; the engine's own limit sits above it. */
  closeAboveBytes: number;
  maxMessageBytes: number;
  otherOwner: (orderId: string) => TrackingNode | undefined;
  watchers: Watchers;
  subscriptions: OrderSubscriptions;
  orderWatch: OrderWatch;
  views: OrderViews;
  quota: SocketQuota;
  metrics: TrackingMetrics;
  logger: Logger;
}): WebSocketHandler<WatcherData> {
  const { watchers, subscriptions, orderWatch, views, quota, metrics, logger } = options;
  return {
    // The watchers close a socket at closeAboveBytes; the engine drops frames only past this.
    backpressureLimit: options.closeAboveBytes * 2,
    closeOnBackpressureLimit: false,
    // Clients send nothing: a bigger frame is refused as its header arrives, never buffered.
    maxPayloadLength: options.maxMessageBytes,
    // The heartbeat does this job (the engine's timer restarts on every send).
    idleTimeout: 0,
    sendPings: false,
    open(ws) {
      metrics.socketsOpened.inc();
      const { orderId, identity, format } = ws.data;
      logger.debug({ orderId, role: identity.role, format }, "watch socket opened");
      const owner = options.otherOwner(orderId);
      if (owner) {
        watchers.close(ws, CLOSE.moved, owner.url);
        return;
      }
      watchers.add(ws);
      subscriptions.acquire(orderId);
      orderWatch.open(ws);
    },
    message(ws) {
      watchers.close(ws, CLOSE.unexpectedMessage);
    },
    pong(ws) {
      ws.data.awaitingPong = false;
    },
    drain(ws) {
      watchers.drained(ws);
    },
    close(ws, code, reason) {
      quota.release(ws.data.quotaKey);
      const tooBig = !ws.data.closing && reason === ENGINE_TOO_BIG_REASON;
      if (tooBig) metrics.socketsClosed.inc({ reason: CLOSE.messageTooBig.reason });
      const by = ws.data.closing || tooBig ? "server" : "client";
      if (by === "client")
        metrics.clientCloses.inc({ code: CLIENT_CLOSE_CODES.has(code) ? String(code) : "other" });
      logger.debug({ orderId: ws.data.orderId, by, code, reason }, "watch socket closed");
      // Nothing more is sent to it (a snapshot may still be on its way).
      ws.data.closing = true;
      // Each watcher holds one reference on its order's subscription.
      if (!watchers.remove(ws)) return;
      subscriptions.release(ws.data.orderId);
      if (watchers.forOrder(ws.data.orderId).size === 0) views.forget(ws.data.orderId);
    },
  };
}
