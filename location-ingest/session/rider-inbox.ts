import type { Logger } from "pino";
import { parseRiderInboxMessage, type RiderInboxMessage } from "../../core/messages/rider-inbox";
import { createChannelSubscriber } from "../../core/redis/channel-subscriber";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";

export interface InboxHandler {
  message(message: RiderInboxMessage): void;
  /** The subscription had a gap (a reconnect, a failover): messages sent meanwhile were missed. */
  gap(): void;
}

/**
 * One inbox subscription per connected rider on this node, whichever
 * streams of that rider are open here.
 */
export function createRiderInbox(connection: RedisConnection, logger: Logger) {
  const handlers = new Map<string, Set<InboxHandler>>();
  const subscriber = createChannelSubscriber(
    connection,
    logger,
    (channel, payload) => {
      const message = parseRiderInboxMessage(payload);
      if (!message) {
        logger.warn({ channel }, "malformed rider inbox message ignored");
        return;
      }
      for (const listener of handlers.get(channel) ?? []) listener.message(message);
    },
    (channels) => {
      for (const channel of channels)
        for (const listener of handlers.get(channel) ?? []) listener.gap();
    },
  );

  return {
    /** Resolves once messages to the rider's inbox reach this node (or it stops listening). */
    subscribed: (riderId: string): Promise<void> => subscriber.subscribed(keys.riderInbox(riderId)),

    /** Listens to a rider's inbox until the returned function is called. */
    listen(riderId: string, handler: InboxHandler): () => void {
      const channel = keys.riderInbox(riderId);
      let listeners = handlers.get(channel);
      if (!listeners) {
        listeners = new Set();
        handlers.set(channel, listeners);
        subscriber.add(channel);
      }
      listeners.add(handler);
      return () => {
        const current = handlers.get(channel);
        if (!current?.delete(handler) || current.size > 0) return;
        handlers.delete(channel);
        subscriber.remove(channel);
      };
    },
  };
}

export type RiderInbox = ReturnType<typeof createRiderInbox>;
