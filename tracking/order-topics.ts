// One watched order's sockets, and the engine topic per frame format that
// its in-step sockets share: a socket joins when it has seen exactly the
// positions the order has sent and is not congested, and leaves carrying the
// order's mark as its own (watchers.ts decides when).
import { type FrameFormat, TRACKING_SUBPROTOCOLS } from "../core/protocol/tracking-protocol";
import type { OutgoingFrame, RoutedEvent } from "./frames";
import type { WatcherSocket } from "./watcher-socket";

type PositionEvent = Extract<RoutedEvent, { kind: "position" }>;

/** One watched order: its sockets, and the topics its in-step sockets share. */
export interface WatchedOrder {
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

/** An order with no sockets yet, its topics named. */
export function createWatchedOrder(orderId: string): WatchedOrder {
  return {
    sockets: new Set(),
    topics: {
      json: `json ${orderId}`,
      proto: `proto ${orderId}`,
      legacyJson: `legacyJson ${orderId}`,
    },
    inStep: { json: 0, proto: 0, legacyJson: 0 },
    members: 0,
  };
}

/** Into the order's topic for its format, when in step (no-op otherwise). */
export function joinTopic(ws: WatcherSocket, order: WatchedOrder): void {
  const { data } = ws;
  if (data.inStep || data.closing || data.pending || data.congestedSince !== undefined) return;
  if (data.lastPosition !== order.mark || !ws.subscribe(order.topics[data.format])) return;
  data.inStep = true;
  order.inStep[data.format] += 1;
  order.members += 1;
}

/** Out of the topic, carrying the order's mark as its own. */
export function leaveTopic(ws: WatcherSocket, order: WatchedOrder | undefined): void {
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

/** The frame once per format that has in-step sockets, through the engine's fan-out. */
export function publishToTopics(
  order: WatchedOrder,
  frame: OutgoingFrame,
  publish: (topic: string, data: string | Uint8Array) => void,
): void {
  for (const format of FORMATS)
    if (order.inStep[format] > 0) publish(order.topics[format], frame.data(format));
}
