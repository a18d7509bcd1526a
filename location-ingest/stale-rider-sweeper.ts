import type { Logger } from "pino";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { pruneStaleRiders } from "../core/redis/scripts";
import type { IngestMetrics } from "./metrics";

const PRUNE_BATCH = 1_000;

/**
 * Every `everyMs`, removes riders not seen for `staleMs` from each city's
 * geo set, so dispatch never offers work to a phone that went silent and
 * GEOSEARCH stays cheap. Safe to run on every ingest node at once.
 *
 * Each sweep first adds the cities this node serves to `geo:cities` again
 * (one idempotent SADD), so the set heals by itself after Redis lost its
 * data (a restart without persistence, a failover that lost writes).
 */
export function startStaleRiderSweeper(options: {
  connection: RedisConnection;
  /** The cities this node has riders in (registered once per process otherwise). */
  localCities: () => readonly string[];
  staleMs: number;
  everyMs: number;
  metrics: IngestMetrics;
  logger: Logger;
  now?: () => number;
}): { sweepOnce(): Promise<number>; stop(): void } {
  const { connection, localCities, staleMs, everyMs, metrics, logger, now = Date.now } = options;

  async function sweepOnce(): Promise<number> {
    if (!connection.isReady()) return 0;
    const local = localCities();
    if (local.length > 0) await connection.client.sadd(keys.cities(), ...local);
    const cities = await connection.client.smembers(keys.cities());
    let total = 0;
    for (const city of cities) {
      for (;;) {
        const pruned = await pruneStaleRiders(
          connection.client,
          city,
          now() - staleMs,
          PRUNE_BATCH,
        );
        total += pruned;
        if (pruned < PRUNE_BATCH) break;
      }
    }
    metrics.ridersPruned.inc(total);
    return total;
  }

  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepOnce()
      .catch((error: unknown) => logger.warn({ err: error }, "stale rider sweep failed"))
      .finally(() => {
        running = false;
      });
  }, everyMs);
  timer.unref();
  return { sweepOnce, stop: () => clearInterval(timer) };
}
