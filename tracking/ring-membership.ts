import type { Logger } from "pino";
import { CLOSE } from "../core/protocol/tracking-protocol";
import type { RedisConnection } from "../core/redis/client";
import { joinTrackingRegistry } from "../core/tracking-ring/node-registry";
import {
  createTrackingRing,
  type TrackingNode,
  type TrackingRing,
} from "../core/tracking-ring/tracking-ring";
import type { Watchers } from "./watchers";

/**
 * This node's place in the ring of tracking nodes: joining it once
 * listening, sending the watchers of orders another node now owns there
 * when the ring changes, and leaving it for a drain so that every ring
 * agrees on the new owners before any watcher is sent to one.
 */
export function createRingMembership(options: {
  connection: RedisConnection;
  self: TrackingNode;
  /** The ring's tick (TRACKING_RING_REFRESH_MS) and a node's TTL: the same on every node and gateway. */
  ringRefreshMs: number;
  nodeTtlMs: number;
  heartbeatMs: number;
  watchers: Watchers;
  logger: Logger;
}) {
  const { connection, self, ringRefreshMs, watchers, logger } = options;
  let leaving = false;
  let membership: { leave(): Promise<void> } | undefined;

  /** The watcher's order belongs elsewhere: `moved` with the owner's URL, and the close. */
  function moveLostOrders(): void {
    for (const orderId of watchers.orders()) {
      const owner = ring.ownerOf(orderId);
      if (!owner || owner.id === self.id) continue;
      for (const ws of watchers.forOrder(orderId)) watchers.close(ws, CLOSE.moved, owner.url);
    }
  }

  const ring: TrackingRing = createTrackingRing({
    connection,
    ttlMs: options.nodeTtlMs,
    refreshMs: ringRefreshMs,
    logger,
    onChange() {
      if (!leaving) moveLostOrders();
    },
  });

  return {
    ring,

    /** Another node's, when the ring says the order is not this node's. */
    otherOwner(orderId: string): TrackingNode | undefined {
      const owner = ring.ownerOf(orderId);
      return owner && owner.id !== self.id ? owner : undefined;
    },

    /**
     * Just after a tick starts, rings read a few ms apart: one still on the
     * last tick must not send a watcher back to where it came from, so a
     * node about to refuse a watch reads the ring first if it is behind.
     */
    async settleOwner(orderId: string): Promise<void> {
      if (ring.ownerOf(orderId)?.id !== self.id && !ring.isCurrent())
        await ring.refresh().catch(() => false);
    },

    /**
     * Into the registry, once listening (clients sent here must find the
     * node up), mid-tick so every other ring sees the node at the same next tick.
     */
    async join(): Promise<void> {
      await ring.quietMoment();
      membership = await joinTrackingRegistry({
        connection,
        node: self,
        heartbeatMs: options.heartbeatMs,
        logger,
      });
      await ring.refresh();
    },

    /**
     * Out of the registry mid-tick: every ring, this one included, drops the
     * node at the next tick, so a watcher moved then finds a new owner that
     * agrees (never one that sends it back). The node serves until then.
     * Bounded: a Redis that hangs (a cluster queues commands) must not hold a
     * deploy; with Redis gone the heartbeat simply stops and the TTL takes
     * the node out.
     */
    async leave(): Promise<void> {
      leaving = true;
      const left = (async () => {
        await ring.quietMoment();
        await membership
          ?.leave()
          .catch((error: unknown) => logger.warn({ err: error }, "could not leave the ring"));
        await ring.nextTick();
      })();
      await Promise.race([left, Bun.sleep(3 * ringRefreshMs)]);
      ring.stop();
    },

    /** After leaving: every watcher gets `moved` to its order's new owner, if any, and the drain close. */
    sendEveryoneAway(): void {
      for (const ws of watchers.all()) {
        const owner = ring.ownerOf(ws.data.orderId);
        watchers.close(ws, CLOSE.draining, owner && owner.id !== self.id ? owner.url : undefined);
      }
    },
  };
}
