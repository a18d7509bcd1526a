import { positionEventJson } from "../core/messages/tracking-events";
import {
  encodeLocationRecord,
  encodeStoredPosition,
  RIDER_POSITION_TTL_S,
} from "../core/position/position-forms";
import type { RiderPosition } from "../core/position/rider-position";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { type PositionEntry, queueRecordPositions } from "../core/redis/scripts";
import { ShardBatch } from "../core/redis/shard-batch";
import type { GeoPing } from "../proto/gen/delivery/tracking/v1/geo_pb";
import type { LocationLog } from "./location-log/location-log";
import type { IngestMetrics } from "./metrics";

/** A ping that passed its checks, with what is needed to store and fan it out. */
export interface AcceptedPing {
  readonly riderId: string;
  readonly city: string;
  readonly ping: GeoPing;
  readonly speedMps: number;
  readonly headingDeg: number;
  readonly receivedAtMs: number;
  /** Orders whose watchers get this position. */
  readonly orderIds: readonly string[];
  /** False for backlog pings too old to be the rider's current position. */
  readonly current: boolean;
  readonly backfill: boolean;
}

/** A flush Redis has not answered in this long is reported as unavailable. */
const FLUSH_TIMEOUT_MS = 2_000;

export type WriteOutcome = "written" | "unavailable" | "overloaded";

export interface PingWriter {
  /** Resolves once the ping's batch has reached Redis (or failed to). */
  write(ping: AcceptedPing): Promise<WriteOutcome>;
  /** Resolves when everything queued so far has been flushed. */
  drain(): Promise<void>;
}

interface Pending {
  ping: AcceptedPing;
  resolve: (outcome: WriteOutcome) => void;
}

/**
 * Micro-batches pings from every stream of the process: while one flush is
 * in flight the next batch gathers, so load turns into bigger pipelines
 * (one per Redis shard) rather than more round trips. The queue is bounded:
 * past it, pings are refused as overloaded instead of growing memory.
 */
export function createPingWriter(options: {
  connection: RedisConnection;
  locationLog: LocationLog;
  metrics: IngestMetrics;
  maxQueued: number;
  maxBatch: number;
  /** Flushes outstanding at once; ordering holds because each shard's pipelines share one connection. */
  maxInFlight: number;
  now?: () => number;
}): PingWriter {
  const {
    connection,
    locationLog,
    metrics,
    maxQueued,
    maxBatch,
    maxInFlight,
    now = Date.now,
  } = options;
  const publish = connection.publishCommand;
  let queue: Pending[] = [];
  let inFlight = 0;
  let scheduled = false;
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
    if (!connection.isReady()) {
      for (const item of batch) item.resolve("unavailable");
      return;
    }
    const shards = new ShardBatch(connection);
    const groupsOf = stage(
      shards,
      batch.map(({ ping }) => ping),
    );
    const failed = await shards.exec(FLUSH_TIMEOUT_MS);
    const doneAt = now();
    for (const [index, item] of batch.entries()) {
      const groups = groupsOf[index] ?? [];
      const ok = !groups.some((group) => failed.has(group));
      if (ok) metrics.writeLatency.observe((doneAt - item.ping.receivedAtMs) / 1000);
      item.resolve(ok ? "written" : "unavailable");
    }
  }

  /**
   * Adds one flush's commands to the batch: per city one record-positions
   * script call (geo set, last seen, stream log), per ping its last position
   * and one event per active order. Returns the shard groups each ping touched.
   */
  function stage(shards: ShardBatch, batch: readonly AcceptedPing[]): string[][] {
    const cities = new Map<string, { entries: PositionEntry[]; pings: number[] }>();
    const groups = batch.map((accepted, index) => {
      const { riderId, city, ping, receivedAtMs } = accepted;
      const position: RiderPosition = {
        riderId,
        city,
        lat: ping.lat,
        lng: ping.lng,
        accuracyM: Math.fround(ping.accuracyM),
        speedMps: accepted.speedMps,
        headingDeg: accepted.headingDeg,
        recordedAtMs: Number(ping.recordedAtMs),
        seq: ping.seq,
        receivedAtMs,
      };
      const record = encodeLocationRecord(position, accepted.backfill);
      if (locationLog.kind === "external")
        locationLog.sink.append({ riderId, city, recordedAtMs: position.recordedAtMs, record });
      const touched: string[] = [];
      if (accepted.current || locationLog.kind === "redis-stream") {
        let cityBatch = cities.get(city);
        if (!cityBatch) {
          cityBatch = { entries: [], pings: [] };
          cities.set(city, cityBatch);
        }
        cityBatch.entries.push({
          riderId,
          current: accepted.current,
          lng: ping.lng,
          lat: ping.lat,
          seenMs: receivedAtMs,
          record,
        });
        cityBatch.pings.push(index);
      }
      if (!accepted.current) return touched;

      const posKey = keys.riderPosition(riderId);
      const riderShard = shards.pipelineFor(posKey);
      riderShard.pipeline.set(posKey, encodeStoredPosition(position), "EX", RIDER_POSITION_TTL_S);
      touched.push(riderShard.group);

      for (const orderId of accepted.orderIds) {
        const channel = keys.orderTrack(orderId);
        const orderShard = shards.pipelineFor(channel);
        orderShard.pipeline[publish](channel, positionEventJson(orderId, position));
        touched.push(orderShard.group);
      }
      return touched;
    });
    const streamMaxLen = locationLog.kind === "redis-stream" ? locationLog.maxLen : 0;
    for (const [city, { entries, pings }] of cities) {
      const cityShard = shards.pipelineFor(keys.cityRiders(city));
      queueRecordPositions(cityShard.pipeline, city, entries, streamMaxLen);
      for (const index of pings) groups[index]?.push(cityShard.group);
    }
    return groups;
  }

  return {
    write(ping) {
      if (queue.length >= maxQueued) return Promise.resolve("overloaded");
      return new Promise((resolve) => {
        queue.push({ ping, resolve });
        schedule();
      });
    },
    drain() {
      if (inFlight === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idle.push(resolve);
      });
    },
  };
}
