import calculateSlot from "cluster-key-slot";
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisConnection } from "./client";

/** ioredis's rejection of a command whose connection closed (its CONNECTION_CLOSED_ERROR_MSG). */
const isClosedConnection = (error: unknown): boolean =>
  error instanceof Error && error.message === "Connection is closed.";

/**
 * How long an announcement waits at most for the command connection to be ready and (cluster)
 * for its slot map to follow the subscriber's, and the pause between its refreshes. Each
 * refresh asks one node, picked at random, and a node that has not yet heard of a promotion by
 * gossip answers with the old map.
 */
const COMMANDS_FOLLOW_WAIT_MS = 5_000;
const COMMANDS_REFRESH_PAUSE_MS = 50;

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
 * `onResubscribed` then hears which channels may have missed messages. In
 * cluster mode it also hears of the channels of one master whose subscriber
 * connection dropped, or whose slot moved to another master, while the
 * cluster stayed ready (ioredis re-subscribes those by itself, silently).
 * Either way it hears once the command connection can serve its reads of
 * those channels (ready, and in cluster mode sending their slots where the
 * subscriber does), or after COMMANDS_FOLLOW_WAIT_MS: the two connections
 * reconnect each on its own schedule.
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
  // Cluster mode: each confirmed channel's slot and the master it was subscribed on, and the
  // channels a master's dropped subscriber connection (or a moved slot) took while the cluster
  // stayed ready.
  const placed = new Map<string, { slot: number; master: string | undefined }>();
  const lost = new Set<string>();
  const masterOfSlot = (slot: number): string | undefined =>
    (subscriber as Cluster).slots[slot]?.[0];

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
          // Cluster: tried again once the cluster's subscribers are reset (a master's came back).
          if (sharded) for (const channel of batch) if (channels.has(channel)) lost.add(channel);
          return;
        }
        for (const channel of batch) {
          if (!channels.has(channel)) continue;
          confirmed.add(channel);
          if (sharded) {
            const slot = calculateSlot(channel);
            placed.set(channel, { slot, master: masterOfSlot(slot) });
          }
          settle(channel);
        }
      }),
    );
    if (failures.length > 0) {
      // Cluster: a subscriber connection to a master that just died closes under the command;
      // the channel is tried again when ioredis replaces that subscriber (it keeps doing so
      // while the master is away, and its connection errors are logged as the connection's).
      const detail = { err: failures[0], channels: list.length, failed: failures.length };
      if (sharded && failures.every(isClosedConnection))
        logger.debug(detail, "subscribe failed on a closing connection; retried on the next reset");
      else logger.warn(detail, "subscribe failed");
    }
    return failures.length === 0;
  }
  // A dropped connection drops its subscriptions with it.
  subscriber.on("close", () => {
    confirmed.clear();
    lost.clear();
  });
  subscriber.on("ready", () => {
    const wanted = [...channels];
    lost.clear();
    subscribe(wanted)
      .then((done) => (done ? announce(wanted) : undefined))
      .catch((error: unknown) => logger.warn({ err: error }, "resubscribe announcement failed"));
  });
  if (sharded) watchShardedSubscribers(subscriber as Cluster);

  function unconfirm(channel: string): void {
    if (confirmed.delete(channel)) lost.add(channel);
  }

  /**
   * One master's subscriber connection dropped while the cluster stayed ready: ioredis
   * replaces it and re-subscribes that master's channels from its own list, telling no
   * one (the cluster is never not ready). Those channels are subscribed again here once
   * it has, and `onResubscribed` hears them, as after a standalone reconnect: the reply to
   * this SSUBSCRIBE, on that same connection, follows ioredis's, so from then on no message
   * is missed. (A second SSUBSCRIBE of a channel changes nothing on the server; ioredis's
   * list holds the name once more, and remove()'s SUNSUBSCRIBE takes every copy off.)
   * "subscribersReady" and "+subscriber" are not in ioredis's README: read from its
   * ClusterSubscriberGroup (6.0); channel-subscriber-failover.test.ts fails if they change.
   */
  function watchShardedSubscribers(cluster: Cluster): void {
    // Masters whose subscriber connection ended since the last subscriber was started: one
    // that ended again at once (a dead master, until its replica is promoted) is left to the
    // next reset. ioredis resets every few milliseconds meanwhile, and each SSUBSCRIBE sent
    // to the ended connection would fail and add the channel to its list once more. (Its
    // "-node" can come after the reset's "subscribersReady": such a send fails, at debug.)
    const dropped = new Set<string>();
    cluster.on("+subscriber", () => dropped.clear());
    // Its subscribers' "-node" names the master; the connection pool's names none.
    cluster.on("-node", (_node: unknown, master?: string) => {
      if (typeof master !== "string") return;
      dropped.add(master);
      for (const [channel, on] of placed) if (on.master === master) unconfirm(channel);
    });
    // After each reset of the subscribers that changed something (a master's replaced, or
    // the slot map changed: a replica promoted for a master that hung rather than closed).
    cluster.on("subscribersReady", () => {
      const failing = new Set(dropped);
      dropped.clear();
      // Not ready: the cluster is reconnecting, and its ready handler subscribes every channel.
      if (cluster.status !== "ready") return;
      for (const [channel, on] of placed)
        if (confirmed.has(channel) && on.master !== masterOfSlot(on.slot)) unconfirm(channel);
      const list = [...lost].filter((channel) => {
        const master = masterOfSlot(calculateSlot(channel));
        return master === undefined || !failing.has(master);
      });
      for (const channel of list) lost.delete(channel);
      subscribe(list)
        .then(() => announce(list.filter((channel) => confirmed.has(channel))))
        .catch((error: unknown) => logger.warn({ err: error }, "resubscribe announcement failed"));
    });
  }

  /**
   * Tells the user that `list`, subscribed again, may have missed messages, once the command
   * connection can serve its reads of them (or it has waited COMMANDS_FOLLOW_WAIT_MS): the
   * user reads at once through that connection, which, not yet ready, would fail the read
   * (it queues nothing), and in cluster mode would send it to a dead master.
   */
  async function announce(list: string[]): Promise<void> {
    if (list.length === 0) return;
    const giveUpAt = Date.now() + COMMANDS_FOLLOW_WAIT_MS;
    await connection.waitReady(COMMANDS_FOLLOW_WAIT_MS);
    if (sharded) await commandsFollow(list, giveUpAt);
    // That wait can last seconds: a subscriber closed meanwhile announces nothing, and a
    // channel removed meanwhile is no longer its user's to catch up.
    if (subscriber.status === "end") return;
    const still = list.filter((channel) => channels.has(channel));
    if (still.length > 0) onResubscribed(still);
  }

  /**
   * Resolves once the command connection sends these channels' slots to the masters the
   * subscriber now uses, or at `giveUpAt`: each cluster client refreshes its own map, and the
   * user's read after the announcement goes through the command connection (to the dead
   * master it would fail at once).
   */
  async function commandsFollow(list: string[], giveUpAt: number): Promise<void> {
    const commands = connection.client as Cluster;
    const agree = () =>
      list.every((channel) => {
        const slot = placed.get(channel)?.slot ?? calculateSlot(channel);
        return commands.slots[slot]?.[0] === masterOfSlot(slot);
      });
    while (!agree() && subscriber.status !== "end" && Date.now() < giveUpAt) {
      await new Promise((resolve) => commands.refreshSlotsCache(resolve));
      if (!agree()) await Bun.sleep(COMMANDS_REFRESH_PAUSE_MS);
    }
  }

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
      placed.delete(channel);
      lost.delete(channel);
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
