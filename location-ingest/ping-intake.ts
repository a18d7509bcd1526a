import { create } from "@bufbuild/protobuf";
import type { GeoPing } from "../proto/gen/delivery/tracking/v1/geo_pb";
import {
  type DroppedPing,
  DroppedPingSchema,
  DropReason,
  type PingAck,
  PingAckSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import type { IntervalPolicy, PingLimits } from "./config";
import type { Geofences } from "./geofences";
import { type MotionSample, nextIntervalMs } from "./interval-policy";
import { DROP_REASON_LABELS, type IngestMetrics } from "./metrics";
import { checkPing, type LastFix, sanitizeMotion } from "./ping-checks";
import type { PingWriter } from "./ping-writer";
import type { RiderState } from "./rider-state";

type Fix = LastFix & MotionSample;

/** Where an UploadPings call has got to: its last accepted fix. */
export interface UploadCursor {
  last?: LastFix;
}

export interface Intake {
  /** Checks and stores one live ping; resolves to its drop, if dropped. */
  acceptLive(
    state: RiderState,
    ping: GeoPing,
    receivedAtMs: number,
  ): Promise<DroppedPing | undefined>;
  /**
   * Checks a backlog upload's pings in order and stores those that pass;
   * `upload` carries the last accepted backlog fix from one message to the next.
   */
  acceptBacklog(
    state: RiderState,
    upload: UploadCursor,
    pings: readonly GeoPing[],
    receivedAtMs: number,
  ): Promise<DroppedPing[]>;
  /** The ack for the rider's current state, carrying the given drops. */
  ack(state: RiderState, dropped: DroppedPing[]): PingAck;
}

/**
 * The rules every ping goes through, shared by StreamPings, UploadPings and
 * SendPing. A ping's fix becomes the rider's `last` when it passes its
 * checks, and `confirmed` once Redis has it; a failed write rolls `last`
 * back so the app may send the same seq again.
 */
export function createIntake(options: {
  limits: PingLimits;
  interval: IntervalPolicy;
  writer: PingWriter;
  geofences: Geofences;
  metrics: IngestMetrics;
  now?: () => number;
}): Intake {
  const { limits, interval, writer, geofences, metrics, now = Date.now } = options;
  const intervals = new WeakMap<RiderState, number>();

  function drop(seq: bigint, reason: DropReason): DroppedPing {
    metrics.pingsDropped.inc({ reason: DROP_REASON_LABELS[reason] });
    return create(DroppedPingSchema, { seq, reason });
  }

  function fixOf(ping: GeoPing): Fix {
    const { speedMps, headingDeg } = sanitizeMotion(ping);
    const position = { lat: ping.lat, lng: ping.lng };
    return {
      seq: ping.seq,
      ...position,
      recordedAtMs: Number(ping.recordedAtMs),
      position,
      speedMps,
      headingDeg,
    };
  }

  async function store(
    state: RiderState,
    ping: GeoPing,
    fix: Fix,
    receivedAtMs: number,
    current: boolean,
    backfill: boolean,
  ): Promise<DropReason | undefined> {
    const outcome = await writer.write({
      riderId: state.riderId,
      city: state.city,
      ping,
      speedMps: fix.speedMps,
      headingDeg: fix.headingDeg,
      receivedAtMs,
      orderIds: current ? state.orders.map((order) => order.orderId) : [],
      current,
      backfill,
    });
    if (outcome === "written") {
      metrics.pingsAccepted.inc({ kind: backfill ? "backlog" : "live" });
      if (current && (!state.confirmed || state.confirmed.seq < fix.seq)) state.confirmed = fix;
      return undefined;
    }
    if (current) state.last = state.confirmed;
    return outcome === "overloaded" ? DropReason.OVERLOADED : DropReason.UNAVAILABLE;
  }

  return {
    async acceptLive(state, ping, receivedAtMs) {
      const reason = checkPing(ping, state.last, limits, "live", now());
      if (reason !== undefined) return drop(ping.seq, reason);
      const fix = fixOf(ping);
      const previous = state.last;
      state.last = fix;
      const stops = state.orders.flatMap((order) => [order.pickup, order.dropoff]);
      intervals.set(state, nextIntervalMs(interval, fix, previous, stops));
      const failure = await store(state, ping, fix, receivedAtMs, true, false);
      if (failure !== undefined) return drop(ping.seq, failure);
      geofences.observe(state, fix.position, ping.accuracyM);
      return undefined;
    },

    async acceptBacklog(state, upload, pings, receivedAtMs) {
      // Order and teleports are judged within the backlog itself; only pings
      // newer than the live position and still fresh become the current one.
      const dropped: DroppedPing[] = [];
      const writes: Promise<void>[] = [];
      const nowMs = now();
      for (const ping of pings) {
        const reason = checkPing(ping, upload.last, limits, "backlog", nowMs);
        if (reason !== undefined) {
          dropped.push(drop(ping.seq, reason));
          continue;
        }
        const fix = fixOf(ping);
        upload.last = fix;
        const current =
          (!state.last || state.last.seq < fix.seq) &&
          fix.recordedAtMs >= nowMs - limits.maxLiveAgeMs;
        if (current) state.last = fix;
        writes.push(
          store(state, ping, fix, receivedAtMs, current, true).then((failure) => {
            if (failure !== undefined) dropped.push(drop(ping.seq, failure));
          }),
        );
      }
      await Promise.all(writes);
      return dropped.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    },

    ack(state, dropped) {
      return create(PingAckSchema, {
        lastAcceptedSeq: state.confirmed?.seq ?? 0n,
        nextIntervalMs: intervals.get(state) ?? interval.movingMs,
        dropped,
      });
    },
  };
}
