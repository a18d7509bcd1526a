// The fan-out peer: Socket.IO 4 on Node with @socket.io/redis-adapter, the
// most common way to build this job: a room per order, each socket joined to
// its order's room on connect, events emitted to rooms by another process
// through Redis (@socket.io/redis-emitter, bench/fanout/publish-events.ts).
// WebSocket transport only (no long-polling start), no per-message deflate
// (Socket.IO's default), no auth: connect-time costs are not measured.
// Built for Node by the bench (Bun.build, target node) and run with `node`.
// Prints `{"port": N}` once listening.
//   node socketio-peer-server.js --redis redis://127.0.0.1:6379
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";

const { values: args } = parseArgs({
  options: { redis: { type: "string", default: "redis://127.0.0.1:6379" } },
});
const publisher = new Redis(args.redis as string);
const subscriber = publisher.duplicate();
const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  adapter: createAdapter(publisher, subscriber),
});
io.on("connection", (socket) => {
  const order = socket.handshake.query.order;
  if (typeof order === "string") socket.join(order);
  else socket.disconnect(true);
});
http.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: (http.address() as AddressInfo).port }));
});
