import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { parseRiderInboxMessage, type RiderInboxMessage } from "../core/messages/rider-inbox";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";

type InboxHandler = (message: RiderInboxMessage) => void;

/**
 * One subscription per connected rider on this node (SSUBSCRIBE in cluster
 * mode, so an offer travels to one shard only). ioredis resubscribes by
 * itself after a reconnect.
 */
export function createRiderInbox(connection: RedisConnection, logger: Logger) {
  const subscriber: Redis | Cluster = connection.createSubscriber();
  const sharded = connection.mode === "cluster";
  const handlers = new Map<string, Set<InboxHandler>>();

  const onMessage = (channel: string, payload: string) => {
    const listeners = handlers.get(channel);
    if (!listeners) return;
    const message = parseRiderInboxMessage(payload);
    if (!message) {
      logger.warn({ channel }, "malformed rider inbox message ignored");
      return;
    }
    for (const listener of listeners) listener(message);
  };
  subscriber.on(sharded ? "smessage" : "message", onMessage);

  function subscribe(channels: string[]): void {
    if (channels.length === 0) return;
    const done = sharded ? subscriber.ssubscribe(...channels) : subscriber.subscribe(...channels);
    // While Redis is down this fails; the 'ready' handler below subscribes again.
    done.catch((error: unknown) => logger.warn({ err: error }, "inbox subscribe failed"));
  }
  // Covers subscriptions that failed while disconnected; repeating one is harmless.
  subscriber.on("ready", () => subscribe([...handlers.keys()]));

  function unsubscribe(channel: string): void {
    const done = sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel);
    done.catch((error: unknown) =>
      logger.warn({ err: error, channel }, "inbox unsubscribe failed"),
    );
  }

  return {
    /** Listens to a rider's inbox until the returned function is called. */
    listen(riderId: string, handler: InboxHandler): () => void {
      const channel = keys.riderInbox(riderId);
      let listeners = handlers.get(channel);
      if (!listeners) {
        listeners = new Set();
        handlers.set(channel, listeners);
        subscribe([channel]);
      }
      listeners.add(handler);
      return () => {
        const current = handlers.get(channel);
        if (!current?.delete(handler) || current.size > 0) return;
        handlers.delete(channel);
        unsubscribe(channel);
      };
    },
    /** Channels subscribed right now (for tests and metrics). */
    channelCount: () => handlers.size,
  };
}

export type RiderInbox = ReturnType<typeof createRiderInbox>;
