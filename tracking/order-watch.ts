import type { Logger } from "pino";
import { mayWatch } from "../core/auth/order-access";
import { settleWithin } from "../core/lifecycle/settle-within";
import { positionEventJson, statusEventJson } from "../core/messages/tracking-events";
import { orderEnded, riderVisible } from "../core/order-status";
import { parseStoredPosition } from "../core/position/position-forms";
import { CLOSE } from "../core/protocol/tracking-protocol";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { readOrderRecord } from "../core/redis/order-record";
import { eventFrame, type OutgoingFrame } from "./frames";
import type { TrackingMetrics } from "./metrics";
import type { OrderSubscriptions } from "./order-subscriptions";
import type { OrderView, OrderViews } from "./order-views";
import type { WatcherSocket } from "./watcher-socket";
import type { Watchers } from "./watchers";

const SUBSCRIBE_WAIT_MS = 5_000;

/**
 * What a watcher sees of its order, from connect to close. On connect: the
 * status and, while the order shows its rider (ASSIGNED up to its end), the
 * rider's last position if it is fresh (snapshotMaxAgeMs); live: the order's
 * events, with the rider's frames withheld whenever the node's view says the
 * order does not show that rider. When the order ends every watcher gets
 * the final status and is closed `orderEnded`; a watcher the order no longer
 * allows (its rider was replaced) is closed `notAllowed`.
 */
export function createOrderWatch(options: {
  connection: RedisConnection;
  watchers: Watchers;
  views: OrderViews;
  subscriptions: OrderSubscriptions;
  metrics: TrackingMetrics;
  logger: Logger;
  /**
   * PING_MAX_LIVE_AGE_MS: a stored position the ingest received longer ago
   * than this is where the rider was, not is, and is never a snapshot.
   */
  snapshotMaxAgeMs: number;
}) {
  const { connection, watchers, views, subscriptions, metrics, logger, snapshotMaxAgeMs } = options;

  /** A frame this node made itself (its events are well formed by construction). */
  function ownFrame(orderId: string, json: string): OutgoingFrame {
    const frame = eventFrame(orderId, json, { snapshot: true });
    if (!frame) throw new Error(`unparseable own frame for ${orderId}`);
    return frame;
  }

  /** A watcher the order no longer allows (its rider was replaced) is closed before it sees more. */
  function refuseIfNotAllowed(ws: WatcherSocket, view: OrderView): boolean {
    if (orderEnded(view.status) || mayWatch(ws.data.identity, view)) return false;
    watchers.close(ws, CLOSE.notAllowed);
    return true;
  }

  /** Brings one watcher up to the view: its newest status, and the close an ended order calls for. */
  function settle(ws: WatcherSocket, view: OrderView): void {
    if (refuseIfNotAllowed(ws, view)) return;
    watchers.deliver(ws, ownFrame(ws.data.orderId, statusEventJson(ws.data.orderId, view)));
    if (orderEnded(view.status)) watchers.close(ws, CLOSE.orderEnded);
  }

  function settleAll(orderId: string): void {
    const view = views.get(orderId);
    if (view) for (const ws of watchers.forOrder(orderId)) settle(ws, view);
  }

  /**
   * Reads the record (after the subscription is confirmed, so no change
   * falls between the read and the events) into the view; settles `only`
   * when the view did not move, every watcher of the order when it did (or
   * without `only`). A missing record is not an end: an end is a status
   * event or a record read as ended (`settle` closes `orderEnded`), and a
   * record expires only long after that. Missing under watchers, it was
   * lost (Redis restarted empty, or flushed): they are closed `unavailable`,
   * so apps come back after a backoff and get the order again, or a 404 if
   * it is really gone.
   */
  async function refresh(orderId: string, only?: WatcherSocket): Promise<void> {
    const record = await readOrderRecord(connection.client, orderId);
    // Everyone left while the read was out: a view without watchers would only linger.
    if (watchers.forOrder(orderId).size === 0) return;
    if (!record) {
      views.forget(orderId);
      logger.warn({ orderId }, "watched order's record is missing: watchers told to come back");
      for (const ws of watchers.forOrder(orderId)) watchers.close(ws, CLOSE.unavailable);
      return;
    }
    if (views.observeRecord(orderId, record) || !only) settleAll(orderId);
    else {
      const view = views.get(orderId);
      if (view) settle(only, view);
    }
  }

  /** The rider's last position as the order's frame, when the order still shows that rider. */
  async function lastPosition(
    orderId: string,
    riderId: string,
  ): Promise<OutgoingFrame | undefined> {
    const position = parseStoredPosition(await connection.client.get(keys.riderPosition(riderId)));
    // The order may have ended or changed rider while the read was out.
    if (position?.riderId !== riderId || !views.showsRider(orderId, riderId)) return undefined;
    // The stored position keeps for a day: an old one may be from before this order (the end
    // of the rider's last shift, at home). Only a fix from the live stream shows where the rider is.
    if (position.receivedAtMs < Date.now() - snapshotMaxAgeMs) return undefined;
    return ownFrame(orderId, positionEventJson(orderId, position));
  }

  /** A rider was just assigned: the order's watchers see where the rider is without waiting for a ping. */
  async function showNewRider(orderId: string, riderId: string): Promise<void> {
    const frame = await lastPosition(orderId, riderId);
    if (frame) watchers.broadcast(orderId, frame);
  }

  async function start(ws: WatcherSocket): Promise<void> {
    const { orderId } = ws.data;
    const subscribed = await settleWithin(
      subscriptions.subscribed(orderId).then(() => true),
      SUBSCRIBE_WAIT_MS,
      false,
    );
    if (!subscribed) throw new Error("order subscription not confirmed in time");
    if (ws.data.closing) return;
    await refresh(orderId, ws);
    const view = views.get(orderId);
    if (ws.data.closing || !view?.riderId || !riderVisible(view.status)) return;
    const frame = await lastPosition(orderId, view.riderId);
    if (frame) watchers.deliver(ws, frame);
  }

  return {
    /**
     * A new watcher (already counted and subscribed): no blank map, the
     * status and the last position go out at once. A watcher that cannot
     * be given its snapshot (Redis unreachable) is closed `unavailable`.
     */
    open(ws: WatcherSocket): void {
      start(ws).catch((error: unknown) => {
        logger.warn({ err: error, orderId: ws.data.orderId }, "snapshot failed");
        watchers.close(ws, CLOSE.unavailable);
      });
    },

    /** One published event of `track:{orderId}`, for the order's watchers on this node. */
    onEvent(orderId: string, payload: string): void {
      const frame = eventFrame(orderId, payload);
      if (!frame) {
        logger.warn({ orderId }, "malformed tracking event ignored");
        return;
      }
      const { event } = frame;
      if (event.kind !== "status") {
        if (event.kind !== "moved" && !views.showsRider(orderId, event.riderId))
          metrics.riderFramesWithheld.inc({ type: event.kind });
        else watchers.broadcast(orderId, frame);
        return;
      }
      const riderBefore = views.get(orderId)?.riderId;
      const moved = views.observeStatus(orderId, event);
      const view = moved ? views.get(orderId) : undefined;
      for (const ws of watchers.forOrder(orderId)) {
        if (view && refuseIfNotAllowed(ws, view)) continue;
        watchers.deliver(ws, frame);
      }
      if (!moved) return;
      settleAll(orderId);
      const rider = view?.riderId;
      if (rider && rider !== riderBefore && riderVisible(view.status))
        showNewRider(orderId, rider).catch((error: unknown) =>
          logger.warn({ err: error, orderId }, "new rider's position not sent"),
        );
    },

    /**
     * The subscriber connection came back: events may have been missed while
     * it was down, so each watched order's view is read again (and the
     * rider's frames withheld until it is).
     */
    resync(orderIds: readonly string[]): void {
      for (const orderId of orderIds) {
        views.forget(orderId);
        refresh(orderId).catch((error: unknown) => {
          logger.warn({ err: error, orderId }, "order refresh after resubscribe failed");
          for (const ws of watchers.forOrder(orderId)) watchers.close(ws, CLOSE.unavailable);
        });
      }
    },
  };
}

export type OrderWatch = ReturnType<typeof createOrderWatch>;
