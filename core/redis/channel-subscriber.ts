import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisConnection } from "./client";

export interface ChannelSubscriber {
  /** Subscribes to `channel` (idempotent); failures while Redis is down are retried on reconnect. */
  add(channel: string): void;
  remove(channel: string): void;
  /** Channels currently wanted. */
  readonly channels: ReadonlySet<string>;
}

/**
 * One subscriber connection per process and purpose: SUBSCRIBE on
 * standalone, SSUBSCRIBE in cluster mode (a message goes to one shard, not
 * the whole cluster). Every wanted channel is subscribed again whenever the
 * connection becomes ready, so a Redis restart or a failed subscribe heals.
 */
export function createChannelSubscriber(
  connection: RedisConnection,
  logger: Logger,
  onMessage: (channel: string, payload: string) => void,
): ChannelSubscriber {
  const subscriber: Redis | Cluster = connection.createSubscriber();
  const sharded = connection.mode === "cluster";
  const channels = new Set<string>();

  subscriber.on(sharded ? "smessage" : "message", (channel: string, payload: string) => {
    if (channels.has(channel)) onMessage(channel, payload);
  });

  function subscribe(list: string[]): void {
    if (list.length === 0) return;
    const done = sharded ? subscriber.ssubscribe(...list) : subscriber.subscribe(...list);
    done.catch((error: unknown) =>
      logger.warn({ err: error, channels: list.length }, "subscribe failed"),
    );
  }
  subscriber.on("ready", () => subscribe([...channels]));

  return {
    add(channel) {
      if (channels.has(channel)) return;
      channels.add(channel);
      subscribe([channel]);
    },
    remove(channel) {
      if (!channels.delete(channel)) return;
      const done = sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel);
      done.catch((error: unknown) => logger.warn({ err: error, channel }, "unsubscribe failed"));
    },
    channels,
  };
}
