import type { Logger } from "pino";
import { settleWithin } from "../core/lifecycle/settle-within";
import { CLOSE } from "../core/protocol/tracking-protocol";
import type { RedisConnection } from "../core/redis/client";
import { joinTrackingRegistry, readIdHolderUrl } from "../core/tracking-ring/node-registry";
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
  /** This node's id was claimed by another node (it stalled past the TTL): it stopped beating. */
  onClaimLost: () => void;
  logger: Logger;
}) {
  const { connection, self, ringRefreshMs, watchers, logger } = options;
  let leaving = false;
  let membership: Awaited<ReturnType<typeof joinTrackingRegistry>> | undefined;
  // Set once the id is lost: where its new holder listens.
  let idHolderUrl: string | undefined;

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
        liveForMs: options.nodeTtlMs,
        logger,
        onClaimLost: options.onClaimLost,
      });
      await ring.refresh();
    },

    /**
     * Out of every ring from one tick on, the same for all: the registry
     * gets a last heartbeat that is fresh for the tick after this one and
     * stale from the tick after that (`outFrom`), so no ring reads it in
     * sooner or later than another, however late its timer fires. A write
     * that lands only after `outFrom` started (a loaded host) moves it to
     * the tick after the write. The node serves until its own ring has read
     * a tick from `outFrom` on without it: only then do the new owners agree
     * (one whose ring is behind reads it before refusing, settleOwner).
     * Bounded: with Redis hanging or gone, no beat lands any more and the
     * TTL takes the node out of every ring within two ticks of its last
     * beat's aging anyway; that is the deadline, counted from the last beat
     * sent (not from the SIGTERM), so a node whose Redis has been gone
     * for a TTL leaves at once.
     */
    async leave(): Promise<void> {
      leaving = true;
      const tickOf = (at: number) => at - (at % ringRefreshMs);
      const lastBeat = Math.min(Date.now(), membership?.lastBeatSentMs() ?? Date.now());
      const deadline = lastBeat + options.nodeTtlMs + 2 * ringRefreshMs;
      const byDeadline = <T>(promise: Promise<T>) =>
        settleWithin(promise, Math.max(0, deadline - Date.now()), false as const);
      let outFrom = tickOf(Date.now()) + 2 * ringRefreshMs;
      // Never newer than the last beat sent: when that is already older than outFrom less the
      // TTL (Redis came back after a TTL away, before the next beat), the rings would list the
      // node again until outFrom while it exits at once.
      const written = membership
        ?.leave(Math.min(outFrom - options.nodeTtlMs - 1, lastBeat))
        .then(() => true)
        .catch((error: unknown) => {
          logger.warn({ err: error }, "could not leave the ring");
          return false;
        });
      if (written && (await byDeadline(written)))
        outFrom = Math.max(outFrom, tickOf(Date.now()) + ringRefreshMs);
      const isOut = () =>
        ring.readTick() >= outFrom && !ring.nodes().some((node) => node.id === self.id);
      while (!isOut() && Date.now() < deadline) {
        await Bun.sleep(Math.max(0, outFrom - Date.now()));
        const read = await byDeadline(
          ring.refresh().then(
            () => true,
            () => false,
          ),
        );
        // Not read, or read with the node still in (its last beat never written): the next tick.
        if (!read || (ring.readTick() >= outFrom && !isOut()))
          outFrom = tickOf(Date.now()) + ringRefreshMs;
      }
      if (!isOut()) logger.warn("left the ring without seeing it drop this node");
      ring.stop();
    },

    /**
     * The id was claimed by another node: nothing of this node's may be
     * written any more (the registry entry and the claim are the holder's).
     * The ring is read once more (orders may have moved during the stall)
     * and the claim tells the holder's URL: the ring may not name it yet,
     * since the holder claims the id before its first beat, and a ring
     * already read this tick is not read again. Bounded by one node TTL,
     * after which the watchers are sent away without a `moved` and look
     * the owner up again.
     */
    async abandon(): Promise<void> {
      leaving = true;
      try {
        idHolderUrl = await settleWithin(
          Promise.all([
            ring.refresh().catch(() => false),
            readIdHolderUrl(connection, self.id).catch(() => undefined),
          ]).then(([, url]) => url),
          options.nodeTtlMs,
          undefined,
        );
      } finally {
        ring.stop();
      }
    },

    /**
     * After leaving or abandoning: every watcher gets `moved` to its order's
     * owner when that is another address (a new owner, or the new holder of
     * this id), and the drain close.
     */
    sendEveryoneAway(): void {
      for (const ws of watchers.all()) {
        const owner = ring.ownerOf(ws.data.orderId);
        const url = owner?.id === self.id ? (idHolderUrl ?? owner.url) : owner?.url;
        watchers.close(ws, CLOSE.draining, url && url !== self.url ? url : undefined);
      }
    },
  };
}
