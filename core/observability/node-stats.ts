import type { Logger } from "pino";
import type { Histogram } from "prom-client";
import { settleWithin } from "../lifecycle/settle-within";
import { DRAIN_STEP_WAIT_MS } from "../lifecycle/shutdown";
import type { RedisConnection } from "../redis/client";
import { keys } from "../redis/keys";

export type NodeTier = "ingest" | "tracking";

/** One node's live figures as stored in `edge:node-stats`. */
export interface NodeStats {
  readonly tier: NodeTier;
  readonly nodeId: string;
  /** When the figures were taken (ms); readers ignore entries older than a few reports. */
  readonly at: number;
  readonly figures: Readonly<Record<string, number>>;
}

/** How often each node reports. */
export const NODE_STATS_EVERY_MS = 2_000;

/** Entries not refreshed for this long belong to nodes that are gone. */
export const NODE_STATS_STALE_MS = 15_000;

/**
 * Writes this node's figures to Redis every `everyMs`, so that one reader
 * (the gateway's live map) sees the whole deployment without knowing where
 * each node's /metrics lives. A failed write is skipped: the next one
 * replaces it.
 */
export function startNodeStatsReporter(options: {
  connection: RedisConnection;
  tier: NodeTier;
  nodeId: string;
  everyMs?: number;
  figures: () => Promise<Record<string, number>>;
  logger: Logger;
  now?: () => number;
}): { stop(options?: { forget?: boolean }): Promise<void> } {
  const {
    connection,
    tier,
    nodeId,
    everyMs = NODE_STATS_EVERY_MS,
    figures,
    logger,
    now = Date.now,
  } = options;
  const field = `${tier}:${nodeId}`;
  let failures = 0;
  const report = async () => {
    if (!connection.isReady()) return;
    const stats: NodeStats = { tier, nodeId, at: now(), figures: await figures() };
    await connection.client.hset(keys.nodeStats(), field, JSON.stringify(stats));
  };
  let reporting: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    reporting = report().catch((error: unknown) => {
      if (failures++ % 20 === 0) logger.warn({ err: error }, "node stats report failed");
    });
  }, everyMs);
  timer.unref();
  return {
    /**
     * Stops reporting and deletes the entry; `forget: false` leaves it
     * (another node has the id now). Within DRAIN_STEP_WAIT_MS whatever Redis
     * does: an entry left behind (Redis hung) goes stale like a dead node's.
     */
    async stop({ forget = true } = {}) {
      clearInterval(timer);
      const stopped = (async () => {
        // A report still in flight would put the entry back after the delete.
        await reporting;
        if (forget) await connection.client.hdel(keys.nodeStats(), field).catch(() => undefined);
      })();
      await settleWithin(stopped, DRAIN_STEP_WAIT_MS, undefined);
    },
  };
}

/** The live nodes' figures; entries of nodes gone silent are removed on the way. */
export async function readNodeStats(
  connection: RedisConnection,
  now: number = Date.now(),
): Promise<NodeStats[]> {
  const entries = await connection.client.hgetall(keys.nodeStats());
  const live: NodeStats[] = [];
  const gone: string[] = [];
  for (const [field, value] of Object.entries(entries)) {
    const stats = parseNodeStats(value);
    if (stats && now - stats.at <= NODE_STATS_STALE_MS) live.push(stats);
    else gone.push(field);
  }
  if (gone.length > 0) await connection.client.hdel(keys.nodeStats(), ...gone);
  return live.sort((a, b) => a.tier.localeCompare(b.tier) || a.nodeId.localeCompare(b.nodeId));
}

function parseNodeStats(value: string): NodeStats | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<NodeStats>;
    if (
      (parsed.tier === "ingest" || parsed.tier === "tracking") &&
      typeof parsed.nodeId === "string" &&
      typeof parsed.at === "number" &&
      typeof parsed.figures === "object" &&
      parsed.figures !== null
    )
      return parsed as NodeStats;
  } catch {
    // A malformed entry is treated like a silent node.
  }
  return undefined;
}

/** How much a counter grew per second since the last call. */
export function ratePerSecond(read: () => Promise<number>, now: () => number = Date.now) {
  let last: { value: number; at: number } | undefined;
  return async (): Promise<number> => {
    const current = { value: await read(), at: now() };
    const previous = last;
    last = current;
    if (!previous || current.at <= previous.at) return 0;
    return ((current.value - previous.value) * 1000) / (current.at - previous.at);
  };
}

/** Sum of a counter or gauge over all its label values. */
export async function metricTotal(metric: {
  get(): Promise<{ values: { value: number }[] }>;
}): Promise<number> {
  const { values } = await metric.get();
  return values.reduce((sum, { value }) => sum + value, 0);
}

/**
 * A quantile of what a histogram observed since the last call, as the upper
 * bound of the bucket it falls in (in the histogram's unit), or undefined
 * when nothing was observed.
 */
export function windowedQuantile(histogram: Histogram, quantile: number) {
  let last = new Map<number, number>();
  return async (): Promise<number | undefined> => {
    const { values } = await histogram.get();
    const buckets = new Map<number, number>();
    for (const { labels, value, metricName } of values) {
      if (!metricName?.endsWith("_bucket")) continue;
      const le = labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + value);
    }
    const bounds = [...buckets.keys()].sort((a, b) => a - b);
    const window = bounds.map((le) => ({
      le,
      count: (buckets.get(le) ?? 0) - (last.get(le) ?? 0),
    }));
    last = buckets;
    const total = window.at(-1)?.count ?? 0;
    if (total <= 0) return undefined;
    const le = window.find(({ count }) => count >= total * quantile)?.le;
    // Past the last bucket: report its bound (the figure reads "at least this").
    return le === Number.POSITIVE_INFINITY ? bounds.at(-2) : le;
  };
}
