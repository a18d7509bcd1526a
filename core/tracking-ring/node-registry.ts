import type { Logger } from "pino";
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
 */
export async function joinTrackingRegistry(options: {
  connection: RedisConnection;
  node: TrackingNode;
  heartbeatMs: number;
  logger: Logger;
  now?: () => number;
}): Promise<{ leave(lastBeatMs: number): Promise<void> }> {
  const { connection, node, heartbeatMs, logger, now = Date.now } = options;
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
