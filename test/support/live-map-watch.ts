import type { Page } from "playwright-core";

export interface SocketCounts {
  opens: number;
  closes: number;
  /** Order ids in the order their sockets were opened (one per open). */
  opened: string[];
}

/** Counts the WebSockets a page opens and closes (as the browser sees them). */
export function countSockets(page: Page): SocketCounts {
  const counts: SocketCounts = { opens: 0, closes: 0, opened: [] };
  page.on("websocket", (socket) => {
    counts.opens += 1;
    counts.opened.push(/\/v1\/orders\/([^/]+)\/track/.exec(socket.url())?.[1] ?? "?");
    socket.on("close", () => {
      counts.closes += 1;
    });
  });
  return counts;
}

interface ViewOrder {
  orderId: string;
  status: string;
  riderId?: string;
}

/**
 * Watches the live view's orders through the gateway (one poll a second)
 * and counts the orders that started (got a rider) or ended in the window.
 */
export function watchOrderChurn(gatewayUrl: string, token: string, city = "london") {
  const known = new Map<string, string>();
  const started = new Set<string>();
  const ended = new Set<string>();
  let first = true;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const response = await fetch(`${gatewayUrl}/v1/ops/live?city=${city}`, {
        headers: { authorization: `Bearer ${token}` },
      }).catch(() => undefined);
      if (response?.ok) {
        const orders = ((await response.json()) as { orders: ViewOrder[] }).orders.filter(
          (order) => order.riderId,
        );
        const present = new Set(orders.map((order) => order.orderId));
        for (const order of orders) {
          if (!first && !known.has(order.orderId)) started.add(order.orderId);
          if (["DELIVERED", "CANCELLED"].includes(order.status)) ended.add(order.orderId);
          known.set(order.orderId, order.status);
        }
        // An order leaves the view when its rider drops it: it ended.
        for (const orderId of known.keys()) {
          if (present.has(orderId)) continue;
          ended.add(orderId);
          known.delete(orderId);
        }
        first = false;
      }
      await Bun.sleep(1_000);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { started: started.size, ended: ended.size };
    },
  };
}
