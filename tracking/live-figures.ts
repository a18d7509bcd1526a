import type { Logger } from "pino";
import {
  metricTotal,
  ratePerSecond,
  startNodeStatsReporter,
  windowedQuantile,
} from "../core/observability/node-stats";
import type { RedisConnection } from "../core/redis/client";
import type { TrackingMetrics } from "./metrics";

/**
 * This node's live figures in `edge:node-stats` for the live map: open
 * sockets, frames sent per second and the fan-out p99 (ping received by the
 * ingest → frame sent, over the last window).
 */
export function startLiveFigures(options: {
  connection: RedisConnection;
  nodeId: string;
  metrics: TrackingMetrics;
  logger: Logger;
}): { stop(options?: { forget?: boolean }): Promise<void> } {
  const { metrics } = options;
  const framesPerSecond = ratePerSecond(() => metricTotal(metrics.framesSent));
  const fanoutP99 = windowedQuantile(metrics.pingToFrameLag, 0.99);
  return startNodeStatsReporter({
    connection: options.connection,
    tier: "tracking",
    nodeId: options.nodeId,
    logger: options.logger,
    figures: async () => {
      const p99 = await fanoutP99();
      return {
        sockets: await metricTotal(metrics.sockets),
        framesPerSecond: await framesPerSecond(),
        ...(p99 === undefined ? {} : { fanoutP99Ms: p99 * 1000 }),
      };
    },
  });
}
