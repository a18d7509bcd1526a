// The fan-out bench's event source, a process of its own (as the ingest and
// the gateway's scripts are in production): `--rate` rider positions per
// second, round robin over `--orders` orders, published straight into Redis
// until killed. Each event is order i's rider's next position, stamped with
// the time of publication as `receivedAtMs`, so the watchers' lag is publish
// → arrival.
//   --to channels: the TrackingEvent JSON on `track:{p<n>}:<o>` (tracking nodes
//     and the raw forwarder subscribe there);
//   --to socketio: the same event, as an object, emitted to room <o> with
//     @socket.io/redis-emitter (how a backend process reaches Socket.IO rooms).
// Prints `publishing` once connected.
//   bun bench/fanout/publish-events.ts --redis redis://127.0.0.1:6379 --orders 2500 --rate 5000
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";
import { positionEventJson } from "../../core/messages/tracking-events";
import { keys } from "../../core/redis/keys";

const { values: args } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    to: { type: "string", default: "channels" },
    orders: { type: "string", default: "2500" },
    rate: { type: "string", default: "5000" },
    "order-prefix": { type: "string", default: "bench-order-" },
    "rider-prefix": { type: "string", default: "bench-rider-" },
  },
});
const orders = Number(args.orders);
const rate = Number(args.rate);
// Commands issued in one tick go out in one write, as a busy publisher's would.
const redis = new Redis(args.redis, { enableAutoPipelining: true });
const emitter = args.to === "socketio" ? new Emitter(redis) : undefined;
const orderIds = Array.from({ length: orders }, (_, i) => `${args["order-prefix"]}${i}`);
const channels = orderIds.map((orderId) => keys.orderTrack(orderId));
const seqs = new Array<number>(orders).fill(0);
const TICK_MS = 2;
// One tick never publishes more than this, so a late tick does not burst a second's worth.
const MAX_PER_TICK = Math.max(1, Math.ceil((rate * 20) / 1000));

function publishOne(i: number): void {
  const orderId = orderIds[i] as string;
  const now = Date.now();
  seqs[i] = (seqs[i] ?? 0) + 1;
  const json = positionEventJson(orderId, {
    riderId: `${args["rider-prefix"]}${i}`,
    city: "london",
    lat: 51.5 + i * 1e-5,
    lng: -0.12,
    accuracyM: 5,
    speedMps: 5,
    headingDeg: 90,
    recordedAtMs: now,
    seq: BigInt(seqs[i] ?? 0),
    receivedAtMs: now,
  });
  if (emitter) emitter.to(orderId).emit("event", JSON.parse(json));
  else redis.publish(channels[i] as string, json);
}

await redis.ping();
console.log("publishing");
const startedAt = performance.now();
let published = 0;
let next = 0;
setInterval(() => {
  const due = Math.floor(((performance.now() - startedAt) / 1000) * rate);
  for (let n = 0; n < MAX_PER_TICK && published < due; n++, published++) {
    publishOne(next);
    next = (next + 1) % orders;
  }
  // Behind by more than a tick's cap: the publisher is the bottleneck; skip ahead rather than burst.
  if (due - published > MAX_PER_TICK) published = due;
}, TICK_MS);
