import type { Logger } from "pino";
import { createChannelSubscriber } from "../core/redis/channel-subscriber";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";

/**
 * One Redis subscription per watched order on this node, however many
 * sockets watch it: reference-counted, and dropped `unsubscribeAfterMs`
 * after the last watcher leaves (a quick reconnect keeps it).
 */
export function createOrderSubscriptions(options: {
  connection: RedisConnection;
  logger: Logger;
  unsubscribeAfterMs: number;
  onEvent: (orderId: string, payload: string) => void;
  /** The subscriber connection came back: these orders' events may have been missed meanwhile. */
  onResubscribed: (orderIds: readonly string[]) => void;
}) {
  const { connection, logger, unsubscribeAfterMs, onEvent, onResubscribed } = options;
  const orderOfChannel = new Map<string, string>();
  const watchers = new Map<string, number>();
  const pendingRelease = new Map<string, ReturnType<typeof setTimeout>>();
  const subscriber = createChannelSubscriber(
    connection,
    logger,
    (channel, payload) => {
      const orderId = orderOfChannel.get(channel);
      if (orderId !== undefined) onEvent(orderId, payload);
    },
    (channels) => onResubscribed(channels.flatMap((channel) => orderOfChannel.get(channel) ?? [])),
  );

  function unsubscribe(orderId: string): void {
    pendingRelease.delete(orderId);
    const channel = keys.orderTrack(orderId);
    orderOfChannel.delete(channel);
    subscriber.remove(channel);
  }

  return {
    acquire(orderId: string): void {
      const count = watchers.get(orderId) ?? 0;
      watchers.set(orderId, count + 1);
      clearTimeout(pendingRelease.get(orderId));
      pendingRelease.delete(orderId);
      const channel = keys.orderTrack(orderId);
      if (!orderOfChannel.has(channel)) {
        orderOfChannel.set(channel, orderId);
        subscriber.add(channel);
      }
    },
    release(orderId: string): void {
      const count = (watchers.get(orderId) ?? 0) - 1;
      if (count > 0) {
        watchers.set(orderId, count);
        return;
      }
      watchers.delete(orderId);
      if (unsubscribeAfterMs === 0) {
        unsubscribe(orderId);
        return;
      }
      const timer = setTimeout(() => unsubscribe(orderId), unsubscribeAfterMs);
      timer.unref();
      pendingRelease.set(orderId, timer);
    },
    /** Resolves once Redis confirmed the order's subscription: every later event will arrive. */
    subscribed: (orderId: string): Promise<void> => subscriber.subscribed(keys.orderTrack(orderId)),
    /** Redis subscriptions held right now. */
    subscriptionCount: () => subscriber.channels.size,
    close(): void {
      for (const timer of pendingRelease.values()) clearTimeout(timer);
      pendingRelease.clear();
    },
  };
}

export type OrderSubscriptions = ReturnType<typeof createOrderSubscriptions>;
