import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisConnection } from "./client";

export interface ChannelSubscriber {
  /** Subscribes to `channel` (idempotent); failures while Redis is down are retried on reconnect. */
  add(channel: string): void;
  remove(channel: string): void;
  /**
   * Resolves once Redis has confirmed the subscription to a wanted channel
   * (at once if it already has): from then on every message published to
   * it arrives (or once the channel is no longer wanted). Never rejects;
   * callers bound the wait themselves.
   */
  subscribed(channel: string): Promise<void>;
  /** Channels currently wanted. */
  readonly channels: ReadonlySet<string>;
}

/**
 * One subscriber connection per process and purpose: SUBSCRIBE on
 * standalone, SSUBSCRIBE in cluster mode (a message goes to one shard, not
 * the whole cluster). Every wanted channel is subscribed again whenever the
 * connection becomes ready, so a Redis restart or a failed subscribe heals;
 * `onResubscribed` then hears which channels may have missed messages.
 */
export function createChannelSubscriber(
  connection: RedisConnection,
  logger: Logger,
  onMessage: (channel: string, payload: string) => void,
  onResubscribed: (channels: readonly string[]) => void = () => {},
): ChannelSubscriber {
  const subscriber: Redis | Cluster = connection.createSubscriber();
  const sharded = connection.mode === "cluster";
  const channels = new Set<string>();
  const confirmed = new Set<string>();
  const waiting = new Map<string, (() => void)[]>();

  subscriber.on(sharded ? "smessage" : "message", (channel: string, payload: string) => {
    if (channels.has(channel)) onMessage(channel, payload);
  });

  function settle(channel: string): void {
    for (const wake of waiting.get(channel) ?? []) wake();
    waiting.delete(channel);
  }

  async function subscribe(list: string[]): Promise<boolean> {
    if (list.length === 0) return false;
    try {
      await (sharded ? subscriber.ssubscribe(...list) : subscriber.subscribe(...list));
    } catch (error) {
      logger.warn({ err: error, channels: list.length }, "subscribe failed");
      return false;
    }
    for (const channel of list) {
      if (!channels.has(channel)) continue;
      confirmed.add(channel);
      settle(channel);
    }
    return true;
  }
  // A dropped connection drops its subscriptions with it.
  subscriber.on("close", () => confirmed.clear());
  subscriber.on("ready", () => {
    const wanted = [...channels];
    subscribe(wanted).then((done) => {
      if (done) onResubscribed(wanted);
    });
  });

  return {
    add(channel) {
      if (channels.has(channel)) return;
      channels.add(channel);
      // Not ready yet (starting, or Redis away): the ready handler subscribes every
      // wanted channel, so a command now would only fail and warn.
      if (subscriber.status === "ready") subscribe([channel]);
    },
    remove(channel) {
      if (!channels.delete(channel)) return;
      confirmed.delete(channel);
      settle(channel);
      // Not ready: the connection holds no subscription to drop (it went with the old one).
      if (subscriber.status !== "ready") return;
      const done = sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel);
      done.catch((error: unknown) => logger.warn({ err: error, channel }, "unsubscribe failed"));
    },
    subscribed(channel) {
      if (confirmed.has(channel) || !channels.has(channel)) return Promise.resolve();
      return new Promise((resolve) => {
        const list = waiting.get(channel) ?? [];
        list.push(resolve);
        waiting.set(channel, list);
      });
    },
    channels,
  };
}
