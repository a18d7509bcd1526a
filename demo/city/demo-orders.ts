import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { mintToken } from "../../core/auth/mint-token";
import { RESTAURANTS } from "../upstream/fixtures";
import { DEMO_CITIES } from "./cities";

interface Placed {
  id: string;
  city: string;
  restaurantId: string;
  pickup: { lat: number; lng: number };
}

/**
 * The demo's customers, dispatcher and kitchens, all through the gateway:
 * every `everyMs` a customer orders (with an Idempotency-Key), the
 * dispatcher offers it to the nearest free rider (whose app accepts it from
 * its stream), and the kitchen and rider move it through READY, PICKED_UP
 * and DELIVERED on a timer.
 */
export async function startDemoOrders(options: {
  gatewayUrl: string;
  jwtSecret: string;
  everyMs: number;
  logger: Logger;
}) {
  const { gatewayUrl, jwtSecret, everyMs, logger } = options;
  const dispatcher = await mintToken(jwtSecret, { sub: "demo-dispatcher", role: "dispatcher" });
  const timers = new Set<ReturnType<typeof setTimeout>>();
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
    const restaurant = choices[count % choices.length];
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
        dropoff: { lat: restaurant.location.lat + 0.01, lng: restaurant.location.lng + 0.008 },
        paymentMethod: "card",
      }),
    });
    if (status !== 201) {
      logger.warn({ status, body }, "demo order refused");
      return undefined;
    }
    return { id: String(body.id), city, restaurantId: restaurant.id, pickup: restaurant.location };
  }

  async function dispatch(order: Placed): Promise<void> {
    const { lat, lng } = order.pickup;
    const { body } = await call(
      `/v1/dispatch/candidates?city=${order.city}&lat=${lat}&lng=${lng}&radiusM=5000&limit=5`,
      dispatcher,
    );
    const candidates = (body.candidates ?? []) as { riderId: string }[];
    for (const { riderId } of candidates) {
      const offer = await call("/v1/dispatch/offers", dispatcher, {
        method: "POST",
        body: JSON.stringify({ orderId: order.id, riderId, city: order.city, ttlMs: 15_000 }),
      });
      if (offer.status === 201) return;
    }
    logger.info({ orderId: order.id }, "no free rider near the pickup yet");
  }

  async function tick(): Promise<void> {
    const order = await placeOrder();
    if (order) await dispatch(order);
  }

  const interval = setInterval(
    () => void tick().catch((error: unknown) => logger.warn({ err: error }, "demo order failed")),
    everyMs,
  );
  const first = await placeOrder();
  if (first) await dispatch(first);

  return {
    firstOrder: first,
    /** What a rider's app does with an offer: accept it, then deliver on a timer. */
    async acceptOffer(
      riderToken: string,
      orderId: string,
      fencingToken: string,
      restaurantId: string,
    ): Promise<void> {
      const accepted = await call(`/v1/rides/${orderId}`, riderToken, {
        method: "PATCH",
        body: JSON.stringify({ action: "accept", token: fencingToken }),
      });
      if (accepted.status !== 200) return;
      const kitchen = await mintToken(jwtSecret, { sub: restaurantId, role: "restaurant" });
      const steps: [number, string, string][] = [
        [5_000, "READY", kitchen],
        [15_000, "PICKED_UP", riderToken],
        [45_000, "DELIVERED", riderToken],
      ];
      let version = Number(accepted.body.version);
      for (const [after, to, token] of steps) {
        const timer = setTimeout(async () => {
          timers.delete(timer);
          const moved = await call(`/v1/orders/${orderId}/status`, token, {
            method: "POST",
            body: JSON.stringify({ to, expectedVersion: version }),
          }).catch(() => undefined);
          if (moved?.status === 200) version = Number(moved.body.version);
        }, after);
        timers.add(timer);
      }
    },
    stop() {
      clearInterval(interval);
      for (const timer of timers) clearTimeout(timer);
    },
  };
}
