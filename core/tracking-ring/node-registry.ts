import type { Logger } from "pino";
import type { RedisConnection } from "../redis/client";
import { keys } from "../redis/keys";
import type { TrackingNode } from "./tracking-ring";

const FORGET_AFTER_MS = 3_600_000;
/**
 * A node that leaves is recorded as last seen this long ago rather than
 * removed: out of every ring at once, and still listed, so that a ring can
 * tell a node that left from one missing because Redis lost its data.
 */
const LEFT_SEEN_AGO_MS = FORGET_AFTER_MS / 2;

/**
 * Keeps one tracking node in the registry with a heartbeat every
 * `heartbeatMs` (which also writes it back after Redis lost its data). A
 * node that dies stops beating and falls out of every ring once the ring's
 * TTL passes; `leave` takes it out at once (drain).
 */
export async function joinTrackingRegistry(options: {
  connection: RedisConnection;
  node: TrackingNode;
  heartbeatMs: number;
  logger: Logger;
  now?: () => number;
}): Promise<{ leave(): Promise<void> }> {
  const { connection, node, heartbeatMs, logger, now = Date.now } = options;
  const beat = async () => {
    await connection.client.hset(keys.trackingNodeUrls(), node.id, node.url);
    await connection.client.zadd(keys.trackingNodes(), now(), node.id);
    // Forget nodes dead for long (their URL stays harmless in the hash until reused).
    await connection.client.zremrangebyscore(keys.trackingNodes(), "-inf", now() - FORGET_AFTER_MS);
  };
  await beat();
  const timer = setInterval(() => {
    beat().catch((error: unknown) => logger.warn({ err: error }, "tracking heartbeat failed"));
  }, heartbeatMs);
  timer.unref();
  return {
    async leave() {
      clearInterval(timer);
      await connection.client.zadd(keys.trackingNodes(), now() - LEFT_SEEN_AGO_MS, node.id);
    },
  };
}
