// The fan-out baseline: bare Bun.serve WebSockets that forward each order's
// Redis messages to its sockets, with nothing else (no auth, ring, views,
// ordering, conflation or metrics). Same channels, same client library
// (ioredis, one SUBSCRIBE per order) and same frames as a tracking node.
//   --fanout send: per-socket `ws.send` of the payload, skipping a socket with
//     more than 16 KiB unsent (what a hand-written forwarder does);
//   --fanout publish: one topic per order, `server.publish` (the engine's own
//     fan-out in native code), with no backpressure check at all.
// Prints `{"port": N}` once listening.
//   bun bench/fanout/raw-forward-server.ts --redis redis://127.0.0.1:6379 --fanout send
import { parseArgs } from "node:util";
import type { ServerWebSocket } from "bun";
import { Redis } from "ioredis";
import { keys } from "../../core/redis/keys";

const { values: args } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    fanout: { type: "string", default: "send" },
  },
});
const viaTopics = args.fanout === "publish";
const SOFT_LIMIT = 16 * 1024;
type Socket = ServerWebSocket<{ channel: string }>;
const byChannel = new Map<string, Set<Socket>>();
const subscriber = new Redis(args.redis);

subscriber.on("message", (channel: string, payload: string) => {
  if (viaTopics) {
    server.publish(channel, payload, false);
    return;
  }
  const sockets = byChannel.get(channel);
  if (!sockets) return;
  for (const ws of sockets) if (ws.getBufferedAmount() <= SOFT_LIMIT) ws.send(payload);
});

const server = Bun.serve<{ channel: string }>({
  port: 0,
  hostname: "127.0.0.1",
  fetch(request, server) {
    const orderId = /^\/v1\/orders\/([^/]+)\/track$/.exec(new URL(request.url).pathname)?.[1];
    if (orderId && server.upgrade(request, { data: { channel: keys.orderTrack(orderId) } }))
      return undefined;
    return new Response("not found", { status: 404 });
  },
  websocket: {
    idleTimeout: 0,
    async open(ws) {
      const { channel } = ws.data;
      let sockets = byChannel.get(channel);
      if (!sockets) {
        sockets = new Set();
        byChannel.set(channel, sockets);
        await subscriber.subscribe(channel);
      }
      sockets.add(ws);
      if (viaTopics) ws.subscribe(channel);
    },
    close(ws) {
      byChannel.get(ws.data.channel)?.delete(ws);
    },
    // Watchers only listen.
    message() {},
  },
});
console.log(JSON.stringify({ port: server.port }));
