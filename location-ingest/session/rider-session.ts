import { create } from "@bufbuild/protobuf";
import { parseStoredPosition } from "../../core/position/position-forms";
import { followsInOrder, type RiderPosition } from "../../core/position/rider-position";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import type { GeoPing } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  type DroppedPing,
  DroppedPingSchema,
  DropReason,
  type PingAck,
  type UploadPingsResponse,
  UploadPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { GeofencePolicy, IntervalPolicy, PingLimits } from "../config";
import { DROP_REASON_LABELS, type IngestMetrics } from "../metrics";
import type { GeofenceRecorder } from "../writer/geofence-recorder";
import type { PositionWriter, WriteOutcome } from "../writer/position-writer";
import { readActiveOrders } from "./active-orders";
import { type ActiveOrder, createGeofenceTracker, type GeofenceTracker } from "./geofence-tracker";
import { nextIntervalMs } from "./interval-policy";
import { checkPing, type LastFix, positionOf } from "./ping-checks";

/** What every session of the process shares. */
export interface SessionEnvironment {
  readonly connection: RedisConnection;
  readonly writer: PositionWriter;
  readonly recordCrossings: GeofenceRecorder;
  readonly limits: PingLimits;
  readonly interval: IntervalPolicy;
  readonly geofence: GeofencePolicy;
  readonly metrics: IngestMetrics;
  readonly now: () => number;
}

/** An UploadPings call in progress: its pings are judged against each other, oldest first. */
export interface BacklogUpload {
  /** Checks and stores one message's pings; resolves once each is written or dropped. */
  accept(pings: readonly GeoPing[]): Promise<void>;
  /** The call's answer so far. */
  result(): UploadPingsResponse;
}

/** The `kind` label of edge_ingest_pings_accepted_total (built once: a label object per ping is garbage). */
const ACCEPTED_KIND = { live: { kind: "live" }, backlog: { kind: "backlog" } } as const;

/** A rider without active orders (most pings) shares these rather than new empty arrays per ping. */
const NO_STOPS: readonly ActiveOrder["pickup"][] = [];
const NO_ORDER_IDS: readonly string[] = [];

/**
 * Active orders are read again after this long at most even without an `orders-changed`
 * message; each session draws its next age between half of it and all of it, so riders
 * who connected together (a node restarted, every phone reconnected) do not re-read in
 * step every ten seconds for as long as they stay connected.
 */
const ORDERS_MAX_AGE_MS = 10_000;
const ordersNextAgeMs = () => ORDERS_MAX_AGE_MS * (0.5 + Math.random() / 2);

/**
 * What the ingest knows about one connected rider, and the one place that
 * changes it: the last fix the checks accepted (`last`, perhaps still being
 * written) and the last one Redis has (`confirmed`), the interval policy's
 * answer, what the rider is inside of (geofences) and its active orders.
 * Every call of the rider on this node (its StreamPings, an upload, unary
 * pings) goes through the same session, so ordering holds across them; the
 * Redis write is conditional too (store-rider-positions.lua), so it holds
 * across nodes.
 */
export class RiderSession {
  readonly riderId: string;
  readonly city: string;
  readonly #env: SessionEnvironment;
  #last: RiderPosition | undefined;
  #confirmed: RiderPosition | undefined;
  #nextIntervalMs: number;
  readonly #geofences: GeofenceTracker;
  /** False until the stored position was read (Redis may be away), or after Redis held a newer one. */
  #seeded = false;
  #orders: readonly ActiveOrder[] = [];
  #ordersReadAt = Number.NEGATIVE_INFINITY;
  #ordersAgeMs = ordersNextAgeMs();
  /** The orders must be read before the next position is published (changed, or never read). */
  #ordersStale = true;
  #ordersReading: Promise<void> | undefined;

  constructor(rider: { riderId: string; city: string }, env: SessionEnvironment) {
    this.riderId = rider.riderId;
    this.city = rider.city;
    this.#env = env;
    this.#nextIntervalMs = env.interval.movingMs;
    this.#geofences = createGeofenceTracker(env.geofence);
  }

  /** Checks and stores one live ping; the ack carries its drop, if dropped. */
  accept(ping: GeoPing): Promise<PingAck> {
    const receivedAtMs = this.#env.now();
    const reading = this.#catchUp();
    return reading
      ? reading.then(() => this.#acceptLive(ping, receivedAtMs))
      : this.#acceptLive(ping, receivedAtMs);
  }

  async #acceptLive(ping: GeoPing, receivedAtMs: number): Promise<PingAck> {
    const reason = checkPing(ping, this.#last, this.#env.limits, "live", receivedAtMs);
    if (reason !== undefined) return this.ack([this.#drop(ping.seq, reason)]);
    const position = positionOf(this, ping, receivedAtMs);
    const previous = this.#last;
    this.#last = position;
    const stops =
      this.#orders.length === 0
        ? NO_STOPS
        : this.#orders.flatMap((order) => [order.pickup, order.dropoff]);
    this.#nextIntervalMs = nextIntervalMs(this.#env.interval, position, previous, stops);
    const outcome = await this.#write(position, true, false);
    const failure = this.#settle(position, outcome, true, "live");
    if (failure !== undefined) return this.ack([this.#drop(ping.seq, failure)]);
    this.#env.recordCrossings(
      this.riderId,
      this.#geofences.observe(this.#orders, position, position.accuracyM),
    );
    return this.ack([]);
  }

  /**
   * An offline backlog, oldest first. Order and teleports are judged within
   * the upload itself; a ping that follows the rider's live position and is
   * still fresh becomes the current one, the rest are logged as history.
   */
  backlog(): BacklogUpload {
    const dropped: DroppedPing[] = [];
    let cursor: LastFix | undefined;
    let accepted = 0;
    return {
      accept: async (pings) => {
        await this.#catchUp();
        const { limits, now } = this.#env;
        const receivedAtMs = now();
        const writes: Promise<void>[] = [];
        for (const ping of pings) {
          const reason = checkPing(ping, cursor, limits, "backlog", receivedAtMs);
          if (reason !== undefined) {
            dropped.push(this.#drop(ping.seq, reason));
            continue;
          }
          const position = positionOf(this, ping, receivedAtMs);
          cursor = position;
          const current =
            position.recordedAtMs >= receivedAtMs - limits.maxLiveAgeMs &&
            (!this.#last || followsInOrder(position, this.#last, limits.maxLiveAgeMs));
          if (current) this.#last = position;
          writes.push(
            this.#write(position, current, true).then((outcome) => {
              const failure = this.#settle(position, outcome, current, "backlog");
              if (failure === undefined) accepted += 1;
              else dropped.push(this.#drop(ping.seq, failure));
            }),
          );
        }
        await Promise.all(writes);
      },
      result: () =>
        create(UploadPingsResponseSchema, {
          acceptedCount: accepted,
          lastAcceptedSeq: this.#confirmed?.seq ?? 0n,
          dropped: dropped.toSorted((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0)),
        }),
    };
  }

  /**
   * The ack for the rider as it stands, carrying the given drops: a typed
   * literal, one per ping (create() would copy an initializer into a new
   * message); a field added to PingAck and missed here is a compile error.
   */
  ack(dropped: DroppedPing[]): PingAck {
    return {
      $typeName: "delivery.tracking.v1.PingAck",
      lastAcceptedSeq: this.#confirmed?.seq ?? 0n,
      nextIntervalMs: this.#nextIntervalMs,
      dropped,
    };
  }

  /** The rider's active orders changed (an `orders-changed` message): read them before the next publish. */
  ordersChanged(): void {
    this.#ordersStale = true;
  }

  #write(position: RiderPosition, current: boolean, backfill: boolean): Promise<WriteOutcome> {
    const orderIds =
      current && this.#orders.length > 0
        ? this.#orders.map((order) => order.orderId)
        : NO_ORDER_IDS;
    return this.#env.writer.write({ position, current, orderIds, backfill });
  }

  /** Brings the session up to what Redis says; returns the drop reason of a write that failed. */
  #settle(
    position: RiderPosition,
    outcome: WriteOutcome,
    current: boolean,
    kind: "live" | "backlog",
  ): DropReason | undefined {
    if (outcome === "stored") {
      this.#env.metrics.pingsAccepted.inc(ACCEPTED_KIND[kind]);
      const { maxLiveAgeMs } = this.#env.limits;
      if (current && (!this.#confirmed || followsInOrder(position, this.#confirmed, maxLiveAgeMs)))
        this.#confirmed = position;
      return undefined;
    }
    // Not the rider's position after all: fall back to what Redis is known to hold
    // (unless a newer ping took `last` meanwhile), and after `not_newer` read it again.
    if (current && this.#last === position) this.#last = this.#confirmed;
    if (outcome === "not_newer") {
      this.#seeded = false;
      return DropReason.OUT_OF_ORDER;
    }
    return outcome === "overloaded" ? DropReason.OVERLOADED : DropReason.UNAVAILABLE;
  }

  #drop(seq: bigint, reason: DropReason): DroppedPing {
    this.#env.metrics.pingsDropped.inc({ reason: DROP_REASON_LABELS[reason] });
    return create(DroppedPingSchema, { seq, reason });
  }

  /**
   * Reads what is missing: the stored position (once, so ordering and
   * teleport checks hold across reconnects and nodes) and the active orders
   * (awaited when they changed, in the background when merely old).
   * Undefined when nothing is to be awaited, the common case: most pings
   * pass without a promise here. Redis being away leaves the session as it
   * was; the write reports the outage.
   */
  #catchUp(): Promise<void> | undefined {
    const { connection, now } = this.#env;
    if (!connection.isReady()) return undefined;
    if (now() - this.#ordersReadAt >= this.#ordersAgeMs && !this.#ordersStale)
      this.#readOrders().catch(() => undefined);
    if (this.#seeded && !this.#ordersStale) return undefined;
    return (async () => {
      if (!this.#seeded) await this.#seed();
      // A change that came in while a read was out needs another read.
      while (this.#ordersStale) await this.#readOrders();
    })().catch(() => {
      // The next ping tries again.
    });
  }

  async #seed(): Promise<void> {
    const { connection, limits } = this.#env;
    const raw = await connection.client.get(keys.riderPosition(this.riderId));
    const stored = parseStoredPosition(raw);
    this.#seeded = true;
    if (!stored) return;
    // A ping accepted while the read was out is newer than Redis's copy.
    if (!this.#last || followsInOrder(stored, this.#last, limits.maxLiveAgeMs)) this.#last = stored;
    if (!this.#confirmed || followsInOrder(stored, this.#confirmed, limits.maxLiveAgeMs))
      this.#confirmed = stored;
  }

  #readOrders(): Promise<void> {
    this.#ordersReading ??= (async () => {
      const stale = this.#ordersStale;
      this.#ordersStale = false;
      try {
        this.#orders = await readActiveOrders(this.#env.connection, this.riderId);
        this.#ordersReadAt = this.#env.now();
        this.#ordersAgeMs = ordersNextAgeMs();
      } catch (error) {
        this.#ordersStale ||= stale;
        this.#ordersReadAt = this.#env.now();
        throw error;
      } finally {
        this.#ordersReading = undefined;
      }
    })();
    return this.#ordersReading;
  }
}
