import { positionEventJson } from "../../core/messages/tracking-events";
import {
  encodeLocationRecord,
  encodeStoredPosition,
  RIDER_POSITION_TTL_S,
} from "../../core/position/position-forms";
import type { RiderPosition } from "../../core/position/rider-position";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import {
  type PositionEntry,
  queueRecordPositions,
  queueStoreRiderPositions,
  type StoredPositionEntry,
} from "../../core/redis/scripts";
import { type QueuedCommand, ShardBatch } from "../../core/redis/shard-batch";
import type { IngestMetrics } from "../metrics";
import { FLUSH_TIMEOUT_MS } from "./drain-waits";
import type { LocationLog } from "./location-log/location-log";

/** One accepted position and where it goes. */
export interface PositionWrite {
  readonly position: RiderPosition;
  /**
   * The rider's newest position: stored as its last position (if newer than
   * the stored one), put in the city's geo set and published to `orderIds`.
   * False for backlog pings too old for that: logged as history only.
   */
  readonly current: boolean;
  /** Orders whose watchers get this position (current positions only). */
  readonly orderIds: readonly string[];
  readonly backfill: boolean;
}

/**
 * - `stored`: in Redis (and the location log);
 * - `not_newer`: logged, but Redis already held a position that follows it
 *   in the rider's order (another stream, another node): not the rider's
 *   position;
 * - `unavailable`: its shard failed or did not answer in time;
 * - `overloaded`: the write queue was full, nothing was written.
 */
export type WriteOutcome = "stored" | "not_newer" | "unavailable" | "overloaded";

export interface PositionWriter {
  /** Resolves once the position's batch has reached Redis (or failed to). */
  write(entry: PositionWrite): Promise<WriteOutcome>;
  /**
   * Resolves when everything queued so far has been flushed, within one
   * flush timeout (FLUSH_TIMEOUT_MS): flushes started from then on only get
   * what is left of it, and one Redis fails or does not answer in time
   * refuses what is still queued (`unavailable`: never written nor acked).
   * So neither a hanging Redis (one timeout per batch queued) nor a slow one
   * answering each batch in time holds the drain longer.
   */
  drain(): Promise<void>;
}

function anyFailed(groups: readonly string[], failed: ReadonlySet<string>): boolean {
  for (const group of groups) if (failed.has(group)) return true;
  return false;
}

interface Pending {
  entry: PositionWrite;
  resolve: (outcome: WriteOutcome) => void;
}

/**
 * Micro-batches positions from every rider session of the process: while
 * one flush is in flight the next batch gathers, so load turns into bigger
 * pipelines (one per Redis shard) rather than more round trips. Per flush:
 * one record-positions.lua call per city (geo set, last seen, the stream
 * log), one store-rider-positions.lua call per slot holding the flush's
 * current positions (each stored only if it follows the stored one: per
 * flush on a standalone server, about one per position on a cluster, whose
 * riders' keys spread over its slots), and one publish per active order.
 * The queue is bounded: past it, writes are refused as overloaded instead
 * of growing memory.
 */
export function createPositionWriter(options: {
  connection: RedisConnection;
  locationLog: LocationLog;
  metrics: IngestMetrics;
  maxQueued: number;
  maxBatch: number;
  /** Flushes outstanding at once; ordering holds because each shard's pipelines share one connection. */
  maxInFlight: number;
  /** The live-age bound: the ordering rule's restart window (store-rider-positions.lua). */
  restartAfterMs: number;
  now?: () => number;
}): PositionWriter {
  const { connection, locationLog, metrics, maxQueued, maxBatch, maxInFlight } = options;
  const { restartAfterMs, now = Date.now } = options;
  const publish = connection.publishCommand;
  const streamMaxLen = locationLog.kind === "redis-stream" ? locationLog.maxLen : 0;
  let queue: Pending[] = [];
  let inFlight = 0;
  let scheduled = false;
  let draining = false;
  /** When the drain's flushes must have ended (performance.now()); unbounded until drain(). */
  let drainDeadline = Number.POSITIVE_INFINITY;
  const idle: (() => void)[] = [];

  // Gather what arrives within one turn of the event loop, then flush it
  // while fewer than maxInFlight flushes are outstanding. Under load the
  // queue grows while flushes are out, so batches grow with it.
  function schedule(): void {
    if (scheduled || inFlight >= maxInFlight || queue.length === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      while (inFlight < maxInFlight && queue.length > 0) {
        const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
        queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
        inFlight += 1;
        void flush(batch).finally(() => {
          inFlight -= 1;
          schedule();
          if (inFlight === 0 && queue.length === 0) for (const wake of idle.splice(0)) wake();
        });
      }
    });
  }

  async function flush(batch: Pending[]): Promise<void> {
    metrics.batchPings.observe(batch.length);
    const timeoutMs = Math.min(FLUSH_TIMEOUT_MS, drainDeadline - performance.now());
    if (!connection.isReady() || timeoutMs <= 0) {
      for (const item of batch) item.resolve("unavailable");
      if (timeoutMs <= 0) refuseQueued();
      return;
    }
    const shards = new ShardBatch(connection);
    const stores = new Map<string, StoreCall>();
    const staged = batch.map(({ entry }) => stage(shards, stores, entry));
    queueStores(shards, stores);
    queueEvents(shards, batch, staged);
    stageCities(shards, batch, staged);
    const replies = await shards.exec(timeoutMs);
    if (draining && replies.failed.size > 0) refuseQueued();
    const doneAt = now();
    // Index loops, not entries() or some(): an iterator pair or a closure per ping is garbage.
    for (let index = 0; index < batch.length; index += 1) {
      const { entry, resolve } = batch[index] as Pending;
      const { groups, store } = staged[index] as Staged;
      if (anyFailed(groups, replies.failed)) {
        resolve("unavailable");
        continue;
      }
      metrics.writeLatency.observe((doneAt - entry.position.receivedAtMs) / 1000);
      const stored = store && (replies.reply(store.command) as number[])[store.offset];
      resolve(stored === 0 ? "not_newer" : "stored");
    }
  }

  /** The pings still queued answered `unavailable` at once: the apps send them again. */
  function refuseQueued(): void {
    const refused = queue;
    queue = [];
    for (const item of refused) item.resolve("unavailable");
  }

  /** One store-rider-positions.lua call: positions whose keys share a slot, and whose they are. */
  interface StoreCall {
    readonly key: string;
    readonly entries: StoredPositionEntry[];
    readonly members: Staged[];
  }

  interface Staged {
    /** Shard groups the entry touched. */
    groups: string[];
    /** Its conditional store (a current position), once queued: the call and its place in it. */
    store?: { command: QueuedCommand; offset: number };
    /** The LocationRecord, for the stream log (Kafka got it already). */
    record: Uint8Array;
  }

  /** One entry's record (to Kafka at once), and for a current position its conditional store. */
  function stage(shards: ShardBatch, stores: Map<string, StoreCall>, entry: PositionWrite): Staged {
    const { position } = entry;
    const record = encodeLocationRecord(position, entry.backfill);
    if (locationLog.kind === "external") {
      const { riderId, city, recordedAtMs } = position;
      locationLog.sink.append({ riderId, city, recordedAtMs, record });
    }
    const staged: Staged = { groups: [], record };
    if (!entry.current) return staged;
    const key = keys.riderPosition(position.riderId);
    const slot = shards.slotOf(key);
    let call = stores.get(slot);
    if (!call) {
      call = { key, entries: [], members: [] };
      stores.set(slot, call);
    }
    call.entries.push({ position, json: encodeStoredPosition(position) });
    call.members.push(staged);
    return staged;
  }

  /** The flush's conditional stores: one call per slot (per flush on a standalone server). */
  function queueStores(shards: ShardBatch, stores: Map<string, StoreCall>): void {
    for (const { key, entries, members } of stores.values()) {
      const command = shards.queue(key, (pipeline) =>
        queueStoreRiderPositions(pipeline, entries, restartAfterMs, RIDER_POSITION_TTL_S),
      );
      for (let offset = 0; offset < members.length; offset += 1) {
        const member = members[offset] as Staged;
        member.store = { command, offset };
        member.groups.push(command.group);
      }
    }
  }

  /** One publish per active order of each current position, queued after the stores. */
  function queueEvents(shards: ShardBatch, batch: Pending[], staged: Staged[]): void {
    for (let index = 0; index < batch.length; index += 1) {
      const { entry } = batch[index] as Pending;
      if (!entry.current || entry.orderIds.length === 0) continue;
      const { groups } = staged[index] as Staged;
      for (const orderId of entry.orderIds) {
        const channel = keys.orderTrack(orderId);
        const event = positionEventJson(orderId, entry.position);
        groups.push(shards.queue(channel, (pipeline) => pipeline[publish](channel, event)).group);
      }
    }
  }

  /** Per city one record-positions.lua call: geo set and last seen (current ones), the stream log. */
  function stageCities(shards: ShardBatch, batch: Pending[], staged: Staged[]): void {
    const cities = new Map<string, { entries: PositionEntry[]; members: Staged[] }>();
    for (let index = 0; index < batch.length; index += 1) {
      const { entry } = batch[index] as Pending;
      if (!entry.current && streamMaxLen === 0) continue;
      const { position } = entry;
      const item = staged[index] as Staged;
      let city = cities.get(position.city);
      if (!city) {
        city = { entries: [], members: [] };
        cities.set(position.city, city);
      }
      city.entries.push({ position, current: entry.current, record: item.record });
      city.members.push(item);
    }
    for (const [city, { entries, members }] of cities) {
      const { group } = shards.queue(keys.cityRiders(city), (pipeline) =>
        queueRecordPositions(pipeline, city, entries, streamMaxLen),
      );
      for (const member of members) member.groups.push(group);
    }
  }

  return {
    write(entry) {
      if (queue.length >= maxQueued) return Promise.resolve("overloaded");
      return new Promise((resolve) => {
        queue.push({ entry, resolve });
        schedule();
      });
    },
    drain() {
      draining = true;
      drainDeadline = performance.now() + FLUSH_TIMEOUT_MS;
      if (inFlight === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idle.push(resolve);
      });
    },
  };
}
