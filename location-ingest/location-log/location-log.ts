import type { ShardBatch } from "../../core/redis/shard-batch";

/** One accepted ping on its way to the location log. */
export interface LocationEntry {
  readonly riderId: string;
  readonly city: string;
  readonly recordedAtMs: number;
  /** Protobuf-encoded LocationRecord. */
  readonly record: Uint8Array;
}

/**
 * Where the history of accepted pings goes: Kafka `rider-locations`, or a
 * capped Redis stream without Kafka. `append` never blocks the Redis path.
 */
export interface LocationLog {
  /**
   * Adds one entry. A Redis-backed log stages it into the flush's batch and
   * returns the shard group it used, so the ping fails with that shard.
   */
  append(entry: LocationEntry, batch: ShardBatch): string | undefined;
  /** Undefined when writable, else why not (for /readyz). */
  unwritableReason(): string | undefined;
  /** Sends what is buffered (bounded by the drain timeout) and disconnects. */
  close(): Promise<void>;
}
