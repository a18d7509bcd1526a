// The fan-out baseline: bare Bun.serve WebSockets (no auth, Redis or ring),
// sending the same position frames to the same sockets as fast as they
// drain. `POST /blast?seconds=N` starts it; the watcher process counts.
//   bun bench/fanout/raw-publish-server.ts --port 0   (prints its port)
import { parseArgs } from "node:util";
import type { ServerWebSocket } from "bun";
import { positionEventJson } from "../../core/messages/tracking-events";

const { values: args } = parseArgs({ options: { port: { type: "string", default: "0" } } });
const byOrder = new Map<string, Set<ServerWebSocket<{ orderId: string }>>>();
const SOFT_LIMIT = 16 * 1024;

async function blast(seconds: number): Promise<void> {
  const until = performance.now() + seconds * 1000;
  const orders = [...byOrder.entries()];
  let seq = 0;
  while (performance.now() < until) {
    for (let i = 0; i < orders.length; i++) {
      const [orderId, sockets] = orders[i] as [string, Set<ServerWebSocket<{ orderId: string }>>];
      seq += 1;
      const now = Date.now();
      const frame = positionEventJson(orderId, {
        riderId: "r",
        city: "london",
        lat: 51.5,
        lng: -0.12,
        accuracyM: 5,
        speedMps: 5,
        headingDeg: 90,
        recordedAtMs: now,
        seq: BigInt(seq),
        receivedAtMs: now,
      });
      for (const ws of sockets) {
        if (ws.getBufferedAmount() > SOFT_LIMIT) continue;
        ws.send(frame);
      }
      // Let the event loop write and read between slices, as a real server must.
      if (i % 64 === 63 || i === orders.length - 1)
        await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

const server = Bun.serve<{ orderId: string }>({
  port: Number(args.port),
  hostname: "127.0.0.1",
  async fetch(request, server) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/blast") {
      // Answer at once: the watchers count what arrives; a long-held request would hit idle timeouts.
      void blast(Number(url.searchParams.get("seconds") ?? "10"));
      return new Response(null, { status: 202 });
    }
    const orderId = /^\/v1\/orders\/([^/]+)\/track$/.exec(url.pathname)?.[1];
    if (orderId && server.upgrade(request, { data: { orderId } })) return undefined;
    return new Response("not found", { status: 404 });
  },
  websocket: {
    open(ws) {
      let sockets = byOrder.get(ws.data.orderId);
      if (!sockets) {
        sockets = new Set();
        byOrder.set(ws.data.orderId, sockets);
      }
      sockets.add(ws);
    },
    close(ws) {
      byOrder.get(ws.data.orderId)?.delete(ws);
    },
    // Watchers only listen.
    message() {},
  },
});
console.log(JSON.stringify({ port: server.port }));
