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
    // SSUBSCRIBE takes the channels of one slot only: one command per channel in cluster mode.
    const batches = sharded ? list.map((channel) => [channel]) : [list];
    const failures: unknown[] = [];
    await Promise.all(
      batches.map(async (batch) => {
        try {
          await (sharded ? subscriber.ssubscribe(...batch) : subscriber.subscribe(...batch));
        } catch (error) {
          failures.push(error);
          return;
        }
        for (const channel of batch) {
          if (!channels.has(channel)) continue;
          confirmed.add(channel);
          settle(channel);
        }
      }),
    );
    if (failures.length > 0)
      logger.warn(
        { err: failures[0], channels: list.length, failed: failures.length },
        "subscribe failed",
      );
    return failures.length === 0;
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
      const ready = subscriber.status === "ready";
      // Standalone and not ready: the connection holds no subscription to drop. The dropped
      // connection took them all, and its re-subscribe is ours alone (createSubscriber turns
      // ioredis's off): the ready handler subscribes only what is still wanted.
      if (!sharded && !ready) return;
      // Cluster: its sharded subscribers re-subscribe, on every reconnect, the channels of the
      // cluster's own list, and only SUNSUBSCRIBE takes one off it; so it goes even while the
      // cluster is away (queued until it is back), else the channel would come back for good.
      if (subscriber.status === "end") return;
      const done = sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel);
      done.catch((error: unknown) =>
        ready
          ? logger.warn({ err: error, channel }, "unsubscribe failed")
          : logger.debug({ err: error, channel }, "unsubscribe queued while away failed"),
      );
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
