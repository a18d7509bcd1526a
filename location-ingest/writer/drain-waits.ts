import { DRAIN_STEP_WAIT_MS } from "../../core/lifecycle/shutdown";

// The writer's waits that bound a drain, apart from the modules that wait (the
// Redis client, kafkajs): the config computes the drain's cut from them and so
// imports nothing heavy.

/** A flush Redis has not answered in this long is reported as unavailable. */
export const FLUSH_TIMEOUT_MS = 2_000;

/** A Redis that has answered none of the spill's calls for this long hangs: the rest is lost at once. */
export const SPILL_STALL_MS = 1_000;
/**
 * Records a second the spill's budget counts on: a quarter of what a
 * healthy redis-server took here (100,000 records in 0.70-0.95 s, load
 * 2.3), so only a Redis slower than that loses a full buffer's records.
 */
const SPILL_RECORDS_PER_S = 25_000;

/**
 * How long the Kafka log's close() waits for Redis to take the spill, whether
 * it hangs or answers slowly (what it has not taken by then is counted lost):
 * 1 s, and 1 s per 25,000 records the buffer holds (5 s for the default 100,000).
 */
export function spillWaitMs(bufferRecords: number): number {
  return SPILL_STALL_MS + Math.ceil((bufferRecords * 1_000) / SPILL_RECORDS_PER_S);
}

/** The longest the Kafka log's close() takes past `drainWaitMs`, however Redis and Kafka behave. */
export function kafkaLogCloseWaitMs(bufferRecords: number): number {
  // Then a drain step for the producer's disconnect.
  return spillWaitMs(bufferRecords) + DRAIN_STEP_WAIT_MS;
}

/**
 * The longest the location log's close() takes when Redis or Kafka hangs or
 * is slow: the replay's stop (a drain step), the buffer's wait for Kafka, then
 * the spill and the producer's disconnect. The capped Redis stream has nothing to close.
 */
export function locationLogCloseWaitMs(config: {
  readonly kafkaBrokers?: readonly string[];
  readonly kafkaDrainWaitMs: number;
  readonly kafkaBufferRecords: number;
}): number {
  if (!config.kafkaBrokers) return 0;
  return (
    DRAIN_STEP_WAIT_MS + config.kafkaDrainWaitMs + kafkaLogCloseWaitMs(config.kafkaBufferRecords)
  );
}
