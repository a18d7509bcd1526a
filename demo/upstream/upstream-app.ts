import { createHash, randomUUID } from "node:crypto";
import { distanceMeters } from "../../core/geo";
import { RESTAURANTS } from "./fixtures";

/** Orders remembered per Idempotency-Key (oldest forgotten first), as a real service keeps them a day. */
const MAX_REMEMBERED_KEYS = 100_000;

interface StoredAnswer {
  readonly bodyHash: string;
  readonly status: number;
  readonly body: unknown;
}

/**
 * The stand-in for the order and search services behind the gateway: the
 * response shapes of docs/contract.md, fixture restaurants, nothing stored beyond
 * the process. `POST /orders` honours `Idempotency-Key` as an order or
 * payment service does: the same key and body get the first answer again
 * (`Idempotent-Replayed: true`), the same key with another body 422. A demo
 * component, never imported by the gateway.
 */
export function createUpstreamFetch() {
  const answers = new Map<string, StoredAnswer>();

  function remember(key: string, answer: StoredAnswer): void {
    if (answers.size >= MAX_REMEMBERED_KEYS) answers.delete(answers.keys().next().value as string);
    answers.set(key, answer);
  }

  async function createOrder(request: Request): Promise<Response> {
    const text = await request.text();
    const key = request.headers.get("idempotency-key");
    const bodyHash = createHash("sha256").update(text).digest("hex");
    const earlier = key ? answers.get(key) : undefined;
    if (earlier && earlier.bodyHash !== bodyHash)
      return Response.json({ error: "Idempotency-Key reused with another body" }, { status: 422 });
    if (earlier)
      return Response.json(earlier.body, {
        status: earlier.status,
        headers: { "idempotent-replayed": "true" },
      });
    let parsed: Parameters<typeof placeOrder>[0];
    try {
      parsed = JSON.parse(text);
    } catch {
      return Response.json({ error: "body must be JSON" }, { status: 400 });
    }
    const [status, body] = placeOrder(parsed);
    if (key) remember(key, { bodyHash, status, body });
    return Response.json(body, { status });
  }

  return async function upstream(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/restaurants") {
      const lat = Number(url.searchParams.get("lat"));
      const lng = Number(url.searchParams.get("lng"));
      const q = (url.searchParams.get("q") ?? "").toLowerCase();
      const restaurants = RESTAURANTS.filter(
        (r) => !q || `${r.name} ${r.cuisine}`.toLowerCase().includes(q),
      )
        .map(({ menu: _menu, ...r }) => ({
          ...r,
          distanceM: Math.round(distanceMeters(r.location, { lat, lng })),
        }))
        .filter((r) => Number.isFinite(r.distanceM) && r.distanceM < 20_000)
        .sort((a, b) => a.distanceM - b.distanceM);
      return Response.json({ restaurants });
    }
    const menuMatch = /^\/restaurants\/([^/]+)\/menu$/.exec(url.pathname);
    if (request.method === "GET" && menuMatch) {
      const restaurant = RESTAURANTS.find((r) => r.id === menuMatch[1]);
      return restaurant
        ? Response.json({ restaurantId: restaurant.id, items: restaurant.menu })
        : Response.json({ error: "no such restaurant" }, { status: 404 });
    }
    if (request.method === "POST" && url.pathname === "/orders") return createOrder(request);
    return Response.json({ error: "not found" }, { status: 404 });
  };
}

/** A new order from a create request: [status, body]. */
function placeOrder(body: {
  customerId: string;
  restaurantId: string;
  items: { menuItemId: string; quantity: number }[];
  dropoff: { lat: number; lng: number };
}): [number, unknown] {
  const restaurant = RESTAURANTS.find((r) => r.id === body.restaurantId);
  if (!restaurant) return [422, { error: "no such restaurant" }];
  let total = 0;
  for (const item of body.items) {
    const menuItem = restaurant.menu.find((m) => m.id === item.menuItemId);
    if (!menuItem)
      return [422, { error: `no such menu item ${item.menuItemId}`, code: "unknown_menu_item" }];
    total += menuItem.priceCents * item.quantity;
  }
  return [
    201,
    {
      id: `ord-${randomUUID()}`,
      customerId: body.customerId,
      restaurantId: restaurant.id,
      city: restaurant.city,
      pickup: restaurant.location,
      dropoff: body.dropoff,
      status: "CONFIRMED",
      total,
    },
  ];
}
