import { keys } from "../../core/redis/keys";
import type { ShardBatch } from "../../core/redis/shard-batch";
import type { LocationEntry, LocationLog } from "./location-log";

/**
 * The location log without Kafka: one capped stream per city
 * (`locations:{city}`, on the city's slot), written in the same pipeline as
 * the ping itself, so it costs no extra round trip.
 */
export function createRedisStreamLog(options: {
  maxLen: number;
  isRedisReady: () => boolean;
}): LocationLog {
  const { maxLen, isRedisReady } = options;
  return {
    append(entry: LocationEntry, batch: ShardBatch) {
      const key = keys.locationLog(entry.city);
      const { group, pipeline } = batch.pipelineFor(key);
      pipeline.xadd(
        key,
        "MAXLEN",
        "~",
        maxLen,
        "*",
        "rider",
        entry.riderId,
        "record",
        Buffer.from(entry.record),
      );
      return group;
    },
    unwritableReason: () => (isRedisReady() ? undefined : "redis unavailable"),
    close: async () => {},
  };
}
