import type { Logger } from "pino";
import { ConfigError } from "../config/env";
import type { RedisConnection } from "../redis/client";
import { keys } from "../redis/keys";
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
 *
 * One id, one node: an id whose last beat is still within `liveForMs` under
 * another URL is waited out once (a node that died or drained stops
 * beating, so a replacement at a new address joins after at most that
 * long); if it beats again it is live, and joining fails rather than make
 * both nodes one ring member whose URL flips at every beat. Two nodes
 * started with the same id at the same moment are not caught.
 */
export async function joinTrackingRegistry(options: {
  connection: RedisConnection;
  node: TrackingNode;
  heartbeatMs: number;
  /** How long a beat keeps a node in the ring (TRACKING_NODE_TTL_MS). */
  liveForMs: number;
  logger: Logger;
  now?: () => number;
}): Promise<{ leave(lastBeatMs: number): Promise<void> }> {
  const { connection, node, heartbeatMs, liveForMs, logger, now = Date.now } = options;
  await refuseIdLiveElsewhere(connection, node, liveForMs, now);
  let left = false;
  let beating: Promise<void> | undefined;
  const beat = async () => {
    await connection.client.hset(keys.trackingNodeUrls(), node.id, node.url);
    // A beat under way when the node left must not write over its last beat.
    if (left) return;
    await connection.client.zadd(keys.trackingNodes(), now(), node.id);
    // Forget nodes dead for long (their URL stays harmless in the hash until reused).
    await connection.client.zremrangebyscore(keys.trackingNodes(), "-inf", now() - FORGET_AFTER_MS);
  };
  await beat();
  const timer = setInterval(() => {
    beating = beat().catch((error: unknown) =>
      logger.warn({ err: error }, "tracking heartbeat failed"),
    );
  }, heartbeatMs);
  timer.unref();
  return {
    async leave(lastBeatMs) {
      left = true;
      clearInterval(timer);
      await beating;
      await connection.client.zadd(keys.trackingNodes(), lastBeatMs, node.id);
    },
  };
}

/** Another node's last beat under this id, when it is still live and at another URL. */
async function otherHolder(
  connection: RedisConnection,
  node: TrackingNode,
  liveForMs: number,
  now: () => number,
): Promise<{ url: string; lastBeatMs: number } | undefined> {
  const [url, score] = await Promise.all([
    connection.client.hget(keys.trackingNodeUrls(), node.id),
    connection.client.zscore(keys.trackingNodes(), node.id),
  ]);
  if (url === null || url === node.url || score === null) return undefined;
  const lastBeatMs = Number(score);
  return now() - lastBeatMs < liveForMs ? { url, lastBeatMs } : undefined;
}

async function refuseIdLiveElsewhere(
  connection: RedisConnection,
  node: TrackingNode,
  liveForMs: number,
  now: () => number,
): Promise<void> {
  const first = await otherHolder(connection, node, liveForMs, now);
  if (!first) return;
  // A last beat may lie ahead of now (a drain's, picked for a later tick): wait until it is stale.
  await Bun.sleep(Math.max(0, first.lastBeatMs + liveForMs - now()) + 1);
  const again = await otherHolder(connection, node, liveForMs, now);
  if (again && again.lastBeatMs !== first.lastBeatMs)
    throw new ConfigError(
      "TRACKING_NODE_ID",
      `used by a live node at ${again.url} (each node needs its own id)`,
      node.id,
    );
}
