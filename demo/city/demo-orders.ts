import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { mintToken } from "../../core/auth/mint-token";
import type { RideOffer } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { RESTAURANTS } from "../upstream/fixtures";
import { DEMO_CITIES } from "./cities";
import type { SimulatedRider } from "./simulated-rider";

interface Placed {
  id: string;
  city: string;
  restaurantId: string;
  pickup: { lat: number; lng: number };
  placedAt: number;
}

/** An order nobody took for this long is cancelled by the dispatcher. */
const GIVE_UP_MS = 120_000;
/** A rider waits this long at the restaurant before giving the job up. */
const MAX_WAIT_AT_PICKUP_MS = 300_000;

/**
 * The demo's customers, dispatcher and kitchens, all through the gateway:
 * every `everyMs` a customer orders (with an Idempotency-Key), the
 * dispatcher offers it to the nearest free rider (whose app accepts it from
 * its stream and drives it), the kitchen marks it READY after cooking, the
 * ingest's geofence makes it PICKED_UP as the rider leaves, and the rider
 * marks it DELIVERED at the door.
 */
export async function startDemoOrders(options: {
  gatewayUrl: string;
  jwtSecret: string;
  everyMs: number;
  logger: Logger;
}) {
  const { gatewayUrl, jwtSecret, everyMs, logger } = options;
  // Minted for each use, as the riders' job tokens: a demo runs for days, past any one token's exp.
  const dispatcherToken = () =>
    mintToken(jwtSecret, { sub: "demo-dispatcher", role: "dispatcher" });
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopped = false;
  // Orders still waiting for a rider (offers expire or are declined).
  const waiting = new Map<string, Placed>();
  let count = 0;

  const call = async (path: string, token: string, init: RequestInit = {}) => {
    const response = await fetch(`${gatewayUrl}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        ...init.headers,
      },
    });
    return {
      status: response.status,
      body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
    };
  };

  async function placeOrder(): Promise<Placed | undefined> {
    count += 1;
    const city = DEMO_CITIES[count % DEMO_CITIES.length]?.id ?? "london";
    const choices = RESTAURANTS.filter((r) => r.city === city);
    // Each city's turn comes every DEMO_CITIES.length orders: walk its restaurants in turn.
    const restaurant = choices[Math.floor(count / DEMO_CITIES.length) % choices.length];
    if (!restaurant) return undefined;
    const customer = await mintToken(jwtSecret, {
      sub: `demo-customer-${count}`,
      role: "customer",
    });
    const { status, body } = await call("/v1/orders", customer, {
      method: "POST",
      headers: { "idempotency-key": randomUUID() },
      body: JSON.stringify({
        restaurantId: restaurant.id,
        items: [{ menuItemId: restaurant.menu[0]?.id, quantity: 1 }],
        dropoff: dropoffNear(restaurant.location, count),
        paymentMethod: "card",
      }),
    });
    if (status !== 201) {
      logger.warn({ status, body }, "demo order refused");
      return undefined;
    }
    return {
      id: String(body.id),
      city,
      restaurantId: restaurant.id,
      pickup: restaurant.location,
      placedAt: Date.now(),
    };
  }

  /** Offers the order to the nearest fresh rider who carries nothing; true once an offer is out. */
  async function dispatch(order: Placed): Promise<boolean> {
    const { lat, lng } = order.pickup;
    const dispatcher = await dispatcherToken();
    const { body } = await call(
      `/v1/dispatch/candidates?city=${order.city}&lat=${lat}&lng=${lng}&radiusM=5000&limit=10`,
      dispatcher,
    );
    const candidates = (body.candidates ?? []) as { riderId: string; activeOrders: number }[];
    for (const { riderId } of candidates.filter((rider) => rider.activeOrders === 0)) {
      const offer = await call("/v1/dispatch/offers", dispatcher, {
        method: "POST",
        body: JSON.stringify({ orderId: order.id, riderId, city: order.city, ttlMs: 15_000 }),
      });
      if (offer.status === 201) return true;
      // An offer for this order is still out: wait for its answer or expiry.
      if ((offer.body.error as { code?: string } | undefined)?.code === "order_offered")
        return true;
    }
    return false;
  }

  async function step(orderId: string, to: string, version: number, token: string) {
    const moved = await call(`/v1/orders/${orderId}/status`, token, {
      method: "POST",
      body: JSON.stringify({ to, expectedVersion: version }),
    });
    return moved.status === 200;
  }

  /** Re-offers orders whose offer was declined or expired; cancels those nobody took. */
  async function redispatch(): Promise<void> {
    for (const order of waiting.values()) {
      const dispatcher = await dispatcherToken();
      const { status, body } = await call(`/v1/orders/${order.id}/status`, dispatcher);
      if (status !== 200 || body.status !== "CONFIRMED") {
        waiting.delete(order.id);
      } else if (Date.now() - order.placedAt > GIVE_UP_MS) {
        waiting.delete(order.id);
        await step(order.id, "CANCELLED", Number(body.version), dispatcher);
        logger.info({ orderId: order.id }, "no rider took the order; cancelled");
      } else await dispatch(order);
    }
  }

  async function tick(): Promise<void> {
    await redispatch();
    const order = await placeOrder();
    if (!order) return;
    waiting.set(order.id, order);
    await dispatch(order);
  }

  let ticking = false;
  const interval = setInterval(() => {
    // A slow tick (many orders waiting) is not overlapped by the next one.
    if (ticking) return;
    ticking = true;
    tick()
      .catch((error: unknown) => logger.warn({ err: error }, "demo order failed"))
      .finally(() => {
        ticking = false;
      });
  }, everyMs);
  const first = await placeOrder();
  if (first) {
    waiting.set(first.id, first);
    await dispatch(first);
  }

  /** The order's status and version as its assigned rider sees them. */
  async function statusOf(orderId: string, token: string) {
    const { status, body } = await call(`/v1/orders/${orderId}/status`, token);
    if (status !== 200) throw new Error(`status of ${orderId}: ${status}`);
    return { status: String(body.status), version: Number(body.version) };
  }

  /** Moves the order's status; false when refused (e.g. a stale version). */
  async function moveTo(orderId: string, to: string, token: string): Promise<boolean> {
    return step(orderId, to, (await statusOf(orderId, token)).version, token);
  }

  function after(ms: number, action: () => Promise<unknown>): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      action().catch((error: unknown) => logger.warn({ err: error }, "demo step failed"));
    }, ms);
    timers.add(timer);
  }

  /** Tries a step a few times (a concurrent step makes the version stale); true once done. */
  async function moveWithRetries(orderId: string, to: string, token: string): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await moveTo(orderId, to, token)) return true;
      await Bun.sleep(1_000);
    }
    return false;
  }

  /** The rider waits at the restaurant until the kitchen says READY, or gives up. */
  async function waitUntilReady(orderId: string, riderToken: string): Promise<void> {
    const deadline = Date.now() + MAX_WAIT_AT_PICKUP_MS;
    while (Date.now() < deadline) {
      const { status } = await statusOf(orderId, riderToken);
      if (status !== "ASSIGNED") return;
      await Bun.sleep(2_000);
    }
    throw new Error(`order ${orderId} never became READY`);
  }

  /** At the door: confirm the pickup if the geofence did not, then hand over. */
  async function handOver(orderId: string, riderToken: string): Promise<void> {
    await Bun.sleep(3_000);
    if ((await statusOf(orderId, riderToken)).status === "READY")
      await moveWithRetries(orderId, "PICKED_UP", riderToken);
    if (!(await moveWithRetries(orderId, "DELIVERED", riderToken)))
      throw new Error(`order ${orderId} could not be marked DELIVERED`);
  }

  /** A job the rider gave up on: the dispatcher cancels the order (freeing the rider) where it still can. */
  async function abandon(orderId: string, error: unknown): Promise<void> {
    // The demo is stopping: its gateway is going away under the rider, nothing was given up.
    if (stopped) return;
    logger.warn({ err: error, orderId }, "demo rider gave up a job");
    await moveTo(orderId, "CANCELLED", await dispatcherToken()).catch(() => false);
  }

  return {
    firstOrder: first,
    /**
     * What a rider's app does with an offer from its stream: decline while
     * on a job, otherwise accept and drive it (the kitchen cooks meanwhile;
     * leaving the restaurant is PICKED_UP through the ingest's geofence).
     */
    async handleOffer(rider: SimulatedRider, riderToken: string, offer: RideOffer): Promise<void> {
      const { orderId, fencingToken, restaurantId, pickup, dropoff } = offer;
      // Reserved before any await, so two offers arriving together cannot both be taken.
      const accepting = pickup !== undefined && dropoff !== undefined && rider.reserve();
      const answered = await call(`/v1/rides/${orderId}`, riderToken, {
        method: "PATCH",
        body: JSON.stringify({ action: accepting ? "accept" : "decline", token: fencingToken }),
      }).catch(() => undefined);
      if (!accepting) return;
      if (answered?.status !== 200 || !pickup || !dropoff) {
        rider.release();
        return;
      }
      const kitchen = await mintToken(jwtSecret, { sub: restaurantId, role: "restaurant" });
      after(10_000 + Math.random() * 20_000, () => moveWithRetries(orderId, "READY", kitchen));
      rider.startJob(
        {
          pickup: { lat: pickup.lat, lng: pickup.lng },
          dropoff: { lat: dropoff.lat, lng: dropoff.lng },
        },
        {
          atPickup: () =>
            waitUntilReady(orderId, riderToken).catch(async (error: unknown) => {
              await abandon(orderId, error);
              throw error;
            }),
          atDropoff: () =>
            handOver(orderId, riderToken).catch((error: unknown) => abandon(orderId, error)),
        },
      );
    },
    stop() {
      stopped = true;
      clearInterval(interval);
      for (const timer of timers) clearTimeout(timer);
    },
  };
}

/** A drop-off 0.7-1.5 km from the restaurant, in a direction that varies by order. */
function dropoffNear(from: { lat: number; lng: number }, n: number) {
  const angle = n * 2.399; // the golden angle spreads successive orders around
  const meters = 700 + ((n * 137) % 800);
  const dLat = (meters * Math.cos(angle)) / 111_320;
  const dLng = (meters * Math.sin(angle)) / (111_320 * Math.cos((from.lat * Math.PI) / 180));
  return { lat: from.lat + dLat, lng: from.lng + dLng };
}
