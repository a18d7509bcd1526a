import { randomUUID } from "node:crypto";
import { distanceMeters } from "../../core/geo";
import { RESTAURANTS } from "./fixtures";

/**
 * The stand-in for the order and search services behind the gateway: the
 * response shapes of DESIGN.md, fixture restaurants, nothing stored beyond
 * the process. A demo component, never imported by the gateway.
 */
export function createUpstreamFetch() {
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
    if (request.method === "POST" && url.pathname === "/orders") {
      const body = (await request.json()) as {
        customerId: string;
        restaurantId: string;
        items: { menuItemId: string; quantity: number }[];
        dropoff: { lat: number; lng: number };
      };
      const restaurant = RESTAURANTS.find((r) => r.id === body.restaurantId);
      if (!restaurant) return Response.json({ error: "no such restaurant" }, { status: 422 });
      let total = 0;
      for (const item of body.items) {
        const menuItem = restaurant.menu.find((m) => m.id === item.menuItemId);
        if (!menuItem)
          return Response.json({ error: `no such menu item ${item.menuItemId}` }, { status: 422 });
        total += menuItem.priceCents * item.quantity;
      }
      return Response.json(
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
        { status: 201 },
      );
    }
    return Response.json({ error: "not found" }, { status: 404 });
  };
}
