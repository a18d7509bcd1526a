import type { LatLng } from "../core/geo";
import { parseStoredPosition } from "../core/position/position-forms";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { ORDER_FIELDS, parseOrderRecord } from "../core/redis/order-record";
import type { MotionSample } from "./interval-policy";
import type { LastFix } from "./ping-checks";

export interface ActiveOrder {
  readonly orderId: string;
  readonly pickup: LatLng;
  readonly dropoff: LatLng;
}

/**
 * What the ingest knows of one rider between pings. The last fix is seeded
 * from `rider:{r}:pos` when a stream opens, so ordering and teleport checks
 * hold across reconnects to other ingest nodes.
 */
export interface RiderState {
  readonly riderId: string;
  readonly city: string;
  /** False until the last fix was read from Redis (it may be down at open). */
  loaded: boolean;
  /** The last fix accepted by the checks (it may still be in flight). */
  last?: LastFix & MotionSample;
  /** The last fix known to be in Redis; `last` falls back to it when a write fails. */
  confirmed?: LastFix & MotionSample;
  orders: readonly ActiveOrder[];
  ordersLoadedAtMs: number;
}

const ORDERS_MAX_AGE_MS = 10_000;
const UNARY_CACHE_SIZE = 50_000;

export function createRiderStateStore(connection: RedisConnection, now: () => number = Date.now) {
  // Riders using the unary fallback: kept so that each call is not a Redis read.
  const unaryStates = new Map<string, RiderState>();
  // Cities this process has registered for the stale-rider sweep.
  const registeredCities = new Set<string>();

  async function readLastFix(state: RiderState): Promise<void> {
    const stored = parseStoredPosition(
      await connection.client.get(keys.riderPosition(state.riderId)),
    );
    if (stored) {
      const position = { lat: stored.lat, lng: stored.lng };
      const fix = {
        seq: stored.seq,
        ...position,
        recordedAtMs: stored.recordedAtMs,
        position,
        speedMps: stored.speedMps,
        headingDeg: stored.headingDeg,
      };
      // A ping accepted while the read was in flight is newer than Redis's copy.
      if (!state.last || state.last.seq < fix.seq) state.last = fix;
      if (!state.confirmed || state.confirmed.seq < fix.seq) state.confirmed = fix;
    }
    state.loaded = true;
  }

  async function readOrders(state: RiderState): Promise<void> {
    const orderIds = await connection.client.smembers(keys.riderOrders(state.riderId));
    const records = await Promise.all(
      orderIds.map(async (orderId) =>
        parseOrderRecord(
          orderId,
          await connection.client.hmget(keys.order(orderId), ...ORDER_FIELDS),
        ),
      ),
    );
    state.orders = records.flatMap((record) =>
      record ? [{ orderId: record.orderId, pickup: record.pickup, dropoff: record.dropoff }] : [],
    );
    state.ordersLoadedAtMs = now();
  }

  return {
    /** A fresh state for a new stream, seeded from Redis when it is reachable. */
    async open(riderId: string, city: string): Promise<RiderState> {
      const state: RiderState = { riderId, city, loaded: false, orders: [], ordersLoadedAtMs: 0 };
      await this.refresh(state);
      return state;
    },

    /** The state for a unary call: cached per process, bounded. */
    async forUnary(riderId: string, city: string): Promise<RiderState> {
      let state = unaryStates.get(riderId);
      if (!state || state.city !== city) {
        state = await this.open(riderId, city);
        if (unaryStates.size >= UNARY_CACHE_SIZE) {
          unaryStates.delete(unaryStates.keys().next().value as string);
        }
        unaryStates.set(riderId, state);
      }
      await this.refresh(state);
      return state;
    },

    /** Loads what is missing or old; a Redis failure leaves the state as it was. */
    async refresh(state: RiderState): Promise<void> {
      if (!connection.isReady()) return;
      try {
        if (!registeredCities.has(state.city)) {
          await connection.client.sadd(keys.cities(), state.city);
          registeredCities.add(state.city);
        }
        if (!state.loaded) await readLastFix(state);
        if (now() - state.ordersLoadedAtMs >= ORDERS_MAX_AGE_MS) await readOrders(state);
      } catch {
        // Redis went away mid-read: the next ping tries again, and its write reports the outage.
        state.ordersLoadedAtMs = Math.min(state.ordersLoadedAtMs, now() - ORDERS_MAX_AGE_MS);
      }
    },

    /** The cities this process has had riders in (the sweeper keeps them in `geo:cities`). */
    cities: (): readonly string[] => [...registeredCities],

    /** Makes the next refresh reload the rider's orders (an `orders-changed` inbox message). */
    invalidateOrders(state: RiderState): void {
      state.ordersLoadedAtMs = 0;
    },
  };
}

export type RiderStateStore = ReturnType<typeof createRiderStateStore>;
