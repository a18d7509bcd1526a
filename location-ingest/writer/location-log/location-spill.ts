import type { Logger } from "pino";
import { settleWithin } from "../../../core/lifecycle/settle-within";
import type { RedisConnection } from "../../../core/redis/client";
import { keys } from "../../../core/redis/keys";
import type { IngestMetrics } from "../../metrics";
import type { LocationEntry } from "./location-log";

/** Why records went to the spill: the Kafka buffer was full, or the node drained with Kafka away. */
export type SpillReason = "overflow" | "shutdown";
/** Why records were lost: past the city's spill cap, or Redis did not take them in time. */
export type LossReason = "spill_full" | "redis_unavailable";

/** What one flush() settled: records written to the spill, and lost by reason. */
export interface SpillOutcome {
  spilled: number;
  lost: Partial<Record<LossReason, number>>;
}

export interface LocationSpill {
  /** Queues records to keep, oldest first; they are written on the next turn of the event loop. */
  keep(entries: readonly LocationEntry[], reason: SpillReason): void;
  /**
   * Resolves once everything queued so far is in Redis or counted lost, with
   * what it settled (the drain's last flush). What is not written yet is
   * counted lost when Redis has answered none of the spill's calls for
   * `stallMs` (it hangs), and at the latest after `waitMs` (it answers too
   * slowly to finish in time).
   */
  flush(stallMs: number, waitMs: number): Promise<SpillOutcome>;
  /** True while spilled records wait for replay (kept here since, or last counted by the replay). */
  waiting(): boolean;
  /** The mark a count is taken against: keep() calls so far, or -1 while a write is outstanding. */
  mark(): number;
  /** The replay counted `records` in every city's spill, starting at `mark`. */
  counted(records: number, mark: number): void;
}

/** Records per spill-locations.lua call (its arguments stay a few hundred KiB). */
const CHUNK_RECORDS = 1_000;
/** Losses are logged as one line per reason and city at most this often. */
const LOSS_LOG_EVERY_MS = 1_000;

interface Queued {
  entry: LocationEntry;
  reason: SpillReason;
}

/**
 * Where acked location records go when Kafka cannot take them: the city's
 * capped spill stream (`location-spill:{city}`, on the city's slot),
 * replayed to Kafka by location-replay.ts. Writes are sequential, so a
 * city's records enter its stream in the order they were acked. What does
 * not fit under the cap, or finds Redis away too, is lost: counted by
 * reason in edge_ingest_location_log_lost_total and logged with the count.
 */
export function createLocationSpill(options: {
  connection: RedisConnection;
  maxRecords: number;
  metrics: Pick<IngestMetrics, "logSpilled" | "logLost">;
  logger: Logger;
}): LocationSpill {
  const { connection, maxRecords, metrics, logger } = options;
  let queue: Queued[] = [];
  let writing: Promise<void> = Promise.resolve();
  let scheduled = false;
  let keeps = 0;
  /** Records queued or being written. */
  let outstanding = 0;
  /** City → its records queued or being written, for the count when flush() gives up. */
  const unsettled = new Map<string, number>();
  /** Spill calls Redis has answered (or failed): what flush() watches for progress. */
  let answers = 0;
  /** Records written and lost so far, what flush() reports the difference of. */
  let spilledTotal = 0;
  const lostTotal: Record<LossReason, number> = { spill_full: 0, redis_unavailable: 0 };
  /** flush() gave up on Redis: what is still out was counted lost, whatever it comes to. */
  let abandoned = false;
  let waiting = false;
  /** `reason city` → records lost since the last log line. */
  const unlogged = new Map<string, number>();
  let lossLog: ReturnType<typeof setTimeout> | undefined;

  function logLosses(): void {
    lossLog = undefined;
    for (const [key, lost] of unlogged) {
      const [reason, city] = key.split(" ");
      logger.error({ lost, reason, city }, "location records acked to riders could not be kept");
    }
    unlogged.clear();
  }

  /** `records` of `city` are written or counted lost: no longer flush()'s to count. */
  function settle(city: string, records: number): void {
    unsettled.set(city, (unsettled.get(city) ?? 0) - records);
  }

  function lose(records: number, reason: LossReason, city: string) {
    settle(city, records);
    lostTotal[reason] += records;
    metrics.logLost.inc({ reason }, records);
    const key = `${reason} ${city}`;
    unlogged.set(key, (unlogged.get(key) ?? 0) + records);
    lossLog ??= setTimeout(logLosses, LOSS_LOG_EVERY_MS);
  }

  /** Redis did not take the spill in time: every record still out is counted lost. */
  function abandon(): void {
    abandoned = true;
    for (const [city, records] of unsettled)
      if (records > 0) lose(records, "redis_unavailable", city);
  }

  async function writeCity(city: string, records: Queued[]): Promise<void> {
    for (let from = 0; from < records.length; from += CHUNK_RECORDS) {
      if (abandoned) return;
      const chunk = records.slice(from, from + CHUNK_RECORDS);
      const args = chunk.flatMap(({ entry }) => [
        entry.riderId,
        String(entry.recordedAtMs),
        Buffer.from(entry.record),
      ]);
      let kept: number;
      try {
        kept = Number(
          await connection.client.spillLocations(keys.locationSpill(city), maxRecords, ...args),
        );
      } catch {
        answers += 1;
        if (!abandoned) lose(records.length - from, "redis_unavailable", city);
        return;
      }
      answers += 1;
      if (abandoned) return;
      settle(city, kept);
      spilledTotal += kept;
      for (const { reason } of chunk.slice(0, kept)) metrics.logSpilled.inc({ reason });
      if (kept < chunk.length) {
        lose(records.length - from - kept, "spill_full", city);
        return;
      }
    }
  }

  async function write(batch: Queued[]): Promise<void> {
    const cities = Map.groupBy(batch, ({ entry }) => entry.city);
    await Promise.all([...cities].map(([city, records]) => writeCity(city, records)));
    outstanding -= batch.length;
  }

  return {
    keep(entries, reason) {
      if (entries.length === 0) return;
      keeps += 1;
      outstanding += entries.length;
      waiting = true;
      for (const entry of entries) {
        queue.push({ entry, reason });
        unsettled.set(entry.city, (unsettled.get(entry.city) ?? 0) + 1);
      }
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        const batch = queue;
        queue = [];
        writing = writing.then(() => write(batch));
      });
    },
    async flush(stallMs, waitMs) {
      const spilledBefore = spilledTotal;
      const lostBefore = { ...lostTotal };
      if (scheduled || queue.length > 0) {
        const batch = queue;
        queue = [];
        writing = writing.then(() => write(batch));
      }
      const written = writing.then(() => true);
      const deadline = performance.now() + waitMs;
      let seen = answers;
      for (;;) {
        const leftMs = deadline - performance.now();
        if (await settleWithin(written, Math.max(0, Math.min(stallMs, leftMs)), false)) break;
        // Hung (no answer since the last look), or out of time while it answers slowly.
        // Records of a call still out may land after all: counted lost, replayed twice at worst.
        if (answers === seen || leftMs <= stallMs) {
          abandon();
          break;
        }
        seen = answers;
      }
      clearTimeout(lossLog);
      logLosses();
      const lost: SpillOutcome["lost"] = {};
      for (const reason of ["spill_full", "redis_unavailable"] as const) {
        const records = lostTotal[reason] - lostBefore[reason];
        if (records > 0) lost[reason] = records;
      }
      return { spilled: spilledTotal - spilledBefore, lost };
    },
    waiting: () => waiting,
    mark: () => (outstanding > 0 ? -1 : keeps),
    counted(records, mark) {
      // Records kept since the count began may be missing from it: only a later count decides.
      if (mark >= 0 && mark === keeps) waiting = records > 0;
    },
  };
}
