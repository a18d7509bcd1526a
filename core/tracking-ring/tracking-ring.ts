import HashRing from "hashring";
import type { Logger } from "pino";
import type { RedisConnection } from "../redis/client";
import { keys } from "../redis/keys";

export interface TrackingNode {
  readonly id: string;
  readonly url: string;
}

export interface TrackingRing {
  /** The node that owns an order, or undefined while no node is alive. */
  ownerOf(orderId: string): TrackingNode | undefined;
  nodes(): readonly TrackingNode[];
  /** Re-reads the registry now; resolves true when membership changed. */
  refresh(): Promise<boolean>;
  stop(): void;
}

/**
 * The consistent-hash ring (ketama, via hashring) over the tracking nodes
 * whose heartbeat is fresh. Every tracking node and the gateway build it
 * from the same sorted registry, so they agree on each order's owner.
 */
export function createTrackingRing(options: {
  connection: RedisConnection;
  /** A node whose last heartbeat is older than this is out of the ring. */
  ttlMs: number;
  refreshMs: number;
  logger: Logger;
  onChange?: (nodes: readonly TrackingNode[]) => void;
  now?: () => number;
}): TrackingRing {
  const { connection, ttlMs, refreshMs, logger, onChange, now = Date.now } = options;
  let members: TrackingNode[] = [];
  let ring: HashRing | undefined;
  let signature = "";

  async function refresh(): Promise<boolean> {
    const { client } = connection;
    const ids = await client.zrangebyscore(keys.trackingNodes(), now() - ttlMs, "+inf");
    const urls = ids.length > 0 ? await client.hmget(keys.trackingNodeUrls(), ...ids) : [];
    const live = ids
      .map((id, index) => ({ id, url: urls[index] ?? "" }))
      .filter((node) => node.url !== "")
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const next = live.map((node) => `${node.id}=${node.url}`).join(",");
    if (next === signature) return false;
    signature = next;
    members = live;
    ring =
      live.length > 0
        ? new HashRing(
            live.map((node) => node.id),
            "md5",
            { compatibility: "ketama" },
          )
        : undefined;
    logger.info({ nodes: live.map((node) => node.id) }, "tracking ring changed");
    onChange?.(members);
    return true;
  }

  const timer = setInterval(() => {
    refresh().catch((error: unknown) =>
      logger.warn({ err: error }, "tracking ring refresh failed"),
    );
  }, refreshMs);
  timer.unref();

  return {
    ownerOf(orderId) {
      const id = ring?.get(orderId);
      return members.find((node) => node.id === id);
    },
    nodes: () => members,
    refresh,
    stop: () => clearInterval(timer),
  };
}
