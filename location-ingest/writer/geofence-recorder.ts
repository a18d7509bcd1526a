import type { Logger } from "pino";
import type { RedisConnection } from "../../core/redis/client";
import { recordGeofence } from "../../core/redis/order-scripts";
import type { IngestMetrics } from "../metrics";
import type { GeofenceCrossing } from "../session/geofence-tracker";

/** Records a rider's geofence crossings as order events; never awaited by a ping. */
export type GeofenceRecorder = (riderId: string, crossings: readonly GeofenceCrossing[]) => void;

/**
 * Turns crossings into order events through record-geofence.lua, off the
 * ping's path: the ack never waits for it. A failed call (Redis away) is
 * counted and not retried: the rider or the kitchen can still move the
 * order by hand, and the drop-off is tried again by the next fix inside it
 * after a reconnect.
 */
export function createGeofenceRecorder(options: {
  connection: RedisConnection;
  /** Leaving the pickup of a READY order also moves it to PICKED_UP. */
  autoStatus: boolean;
  metrics: IngestMetrics;
  logger: Logger;
  now?: () => number;
}): GeofenceRecorder {
  const { connection, autoStatus, metrics, logger, now = Date.now } = options;
  return (riderId, crossings) => {
    for (const { orderId, fence } of crossings) {
      recordGeofence(connection, { orderId, riderId, fence, atMs: now(), autoStatus }).then(
        (outcome) => metrics.geofenceCrossings.inc({ fence, outcome }),
        (error: unknown) => {
          metrics.geofenceCrossings.inc({ fence, outcome: "failed" });
          logger.warn({ err: error, orderId, fence }, "geofence event not recorded");
        },
      );
    }
  };
}
