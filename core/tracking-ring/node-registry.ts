import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { ConfigError } from "../config/env";
import type { RedisConnection } from "../redis/client";
import { keys } from "../redis/keys";
import { holdLease, releaseLease } from "../redis/leases";
import type { TrackingNode } from "./tracking-ring";

const FORGET_AFTER_MS = 3_600_000;

/**
 * Keeps one tracking node in the registry with a heartbeat every
 * `heartbeatMs` (which also writes it back after Redis lost its data). A
 * node that dies stops beating and falls out of every ring once the ring's
 * TTL passes. `leave(lastBeatMs)` (drain) stops the heartbeat and records
 * its last beat as `lastBeatMs`, a time the caller picks so that every ring
 * drops the node from one chosen tick on; the node stays listed, so a ring
 * can tell a node that left from one missing because Redis lost its data.
 * `lastBeatSentMs()` is the newest beat sent: no ring lists the node once
 * that is older than the TTL, whatever became of the writes since.
 *
 * One id, one node: before anything is written, the node claims its id
 * (`tracking:node-claim:<id>`, a lease held by this process's random
 * instance token and URL, renewed by every beat and lasting one node TTL).
 * The claim is atomic, so of two nodes started with the same id at the same
 * moment exactly one wins. The other waits once for the claim to lapse (a
 * node that died stops renewing: its replacement, at any URL, the same one
 * after a crash included, takes the id after at most one TTL); if the claim
 * is still held then, its holder is live and joining fails, rather than
 * make two nodes one ring member whose URL flips at every beat. A drained
 * node gives its claim back, so its replacement joins at once. A node that
 * finds its claim taken by another (it stalled past the TTL) stops beating,
 * logs an error and calls `onClaimLost`: the id is the other node's now.
 */
export async function joinTrackingRegistry(options: {
  connection: RedisConnection;
  node: TrackingNode;
  heartbeatMs: number;
  /** How long a beat keeps a node in the ring (TRACKING_NODE_TTL_MS), and a claim its id. */
  liveForMs: number;
  logger: Logger;
  /** The id was found claimed by another node: this one no longer beats (counted by the tier). */
  onClaimLost?: () => void;
  now?: () => number;
}): Promise<{ leave(lastBeatMs: number): Promise<void>; lastBeatSentMs(): number }> {
  const { connection, node, heartbeatMs, liveForMs, logger, now = Date.now } = options;
  const claim = keys.trackingNodeClaim(node.id);
  const holder = `${randomUUID()} ${node.url}`;
  await claimId(connection, node, holder, liveForMs);
  let left = false;
  let lost = false;
  let beating: Promise<void> | undefined;
  // The newest heartbeat sent, landed or not: no registry entry of this node is newer.
  let lastBeatSent = Number.NEGATIVE_INFINITY;
  const loseClaim = async () => {
    lost = true;
    clearInterval(timer);
    options.onClaimLost?.();
    logger.error(
      { nodeId: node.id, holder: await connection.client.get(claim) },
      "TRACKING_NODE_ID claimed by another node (this one stalled past the node TTL): no more heartbeats",
    );
  };
  const beat = async () => {
    if ((await holdLease(connection.client, claim, holder, liveForMs)) === "held") {
      await loseClaim();
      return;
    }
    await connection.client.hset(keys.trackingNodeUrls(), node.id, node.url);
    // A beat under way when the node left must not write over its last beat.
    if (left) return;
    lastBeatSent = now();
    await connection.client.zadd(keys.trackingNodes(), lastBeatSent, node.id);
    // Forget nodes dead for long (their URL stays harmless in the hash until reused).
    await connection.client.zremrangebyscore(keys.trackingNodes(), "-inf", now() - FORGET_AFTER_MS);
  };
  const timer = setInterval(() => {
    beating = beat().catch((error: unknown) =>
      logger.warn({ err: error }, "tracking heartbeat failed"),
    );
  }, heartbeatMs);
  timer.unref();
  await beat();
  return {
    lastBeatSentMs: () => lastBeatSent,
    async leave(lastBeatMs) {
      left = true;
      clearInterval(timer);
      await beating;
      // A node that stalled past its TTL may have lost the id to another: leave that one be.
      if (lost) return;
      if ((await holdLease(connection.client, claim, holder, liveForMs)) === "held") {
        await loseClaim();
        return;
      }
      await connection.client.zadd(keys.trackingNodes(), lastBeatMs, node.id);
      await releaseLease(connection.client, claim, holder);
    },
  };
}

/**
 * Takes the id's claim for `holder`; held by another, waits once until it
 * lapses and tries again; still held: a live node has the id.
 */
async function claimId(
  connection: RedisConnection,
  node: TrackingNode,
  holder: string,
  liveForMs: number,
): Promise<void> {
  const { client } = connection;
  const claim = keys.trackingNodeClaim(node.id);
  if ((await holdLease(client, claim, holder, liveForMs)) !== "held") return;
  const left = await client.pttl(claim);
  await Bun.sleep(Math.max(0, Math.min(left, liveForMs)) + 1);
  if ((await holdLease(client, claim, holder, liveForMs)) !== "held") return;
  const other = await readIdHolderUrl(connection, node.id);
  throw new ConfigError(
    "TRACKING_NODE_ID",
    `used by a live node at ${other ?? "another address"} (each node needs its own id)`,
    node.id,
  );
}

/**
 * The URL of the node whose claim holds `nodeId` now (a claim is
 * `<instance token> <url>`), undefined when none does. Known from the
 * claim before the holder's first beat names it in any ring.
 */
export async function readIdHolderUrl(
  connection: RedisConnection,
  nodeId: string,
): Promise<string | undefined> {
  const claim = await connection.client.get(keys.trackingNodeClaim(nodeId));
  const space = claim?.indexOf(" ") ?? -1;
  return claim && space >= 0 && space < claim.length - 1 ? claim.slice(space + 1) : undefined;
}
