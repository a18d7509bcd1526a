// A load process of customer apps: `--orders` orders × `--per-order` sockets
// on one server, counting frames and the lag from each event's publication
// (its `receivedAtMs`, stamped by the publisher) to its arrival. Prints
// `ready` once every socket is open; then each stdin line `measure <warmup s>
// <seconds>` prints `measuring` when its window opens and one JSON line of
// results when it closes.
//   bun bench/fanout/load-watchers.ts --url ws://127.0.0.1:8090 --orders 2500 --per-order 4 --token <jwt>
// `--protocol edge` speaks our track route (tracking.v2.json frames);
// `--protocol socketio` is a Socket.IO 4 client over the websocket transport,
// by hand: Engine.IO v4 packets are one WebSocket text message each ("0" open,
// "2" ping → "3" pong, "4" + Socket.IO packet: "40" connect, "42[...]" event),
// so both protocols cost this process the same per frame.
import { parseArgs } from "node:util";
import { TRACKING_SUBPROTOCOLS } from "../../core/protocol/tracking-protocol";
import { Reservoir } from "../support/percentiles";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8090" },
    protocol: { type: "string", default: "edge" },
    orders: { type: "string", default: "2500" },
    "per-order": { type: "string", default: "4" },
    "order-prefix": { type: "string", default: "bench-order-" },
    token: { type: "string", default: "" },
  },
});
const orders = Number(args.orders);
const perOrder = Number(args["per-order"]);
const socketIo = args.protocol === "socketio";
/** Where an event's publication time starts in its JSON (an int64: a decimal string). */
const RECEIVED_AT = '"receivedAtMs":"';
let lag = new Reservoir();
let frames = 0;
let measuring = false;
let closedEarly = 0;

function countFrame(text: string): void {
  if (!measuring) return;
  frames += 1;
  // Cheap field read: a full JSON.parse per frame would make this process the bottleneck.
  const at = text.indexOf(RECEIVED_AT);
  if (at >= 0)
    lag.add(Date.now() - Number.parseInt(text.slice(at + RECEIVED_AT.length, at + 40), 10));
}

function urlOf(order: number): string {
  const orderId = `${args["order-prefix"]}${order}`;
  if (socketIo)
    return `${args.url}/socket.io/?EIO=4&transport=websocket&order=${encodeURIComponent(orderId)}`;
  return `${args.url}/v1/orders/${orderId}/track?access_token=${args.token}`;
}

/** Opens one socket; resolves once it can receive the order's events. */
function open(order: number): Promise<void> {
  const socket = socketIo
    ? new WebSocket(urlOf(order))
    : new WebSocket(urlOf(order), [TRACKING_SUBPROTOCOLS.json]);
  return new Promise<void>((resolve, reject) => {
    socket.addEventListener(
      "close",
      (event) => {
        closedEarly += 1;
        reject(new Error(`socket closed ${event.code} ${event.reason}`));
      },
      { once: true },
    );
    if (!socketIo) {
      socket.addEventListener("message", (event) => countFrame(String(event.data)));
      socket.addEventListener("open", () => resolve(), { once: true });
      return;
    }
    socket.addEventListener("message", (event) => {
      const text = String(event.data);
      if (text.startsWith("42")) countFrame(text);
      else if (text === "2") socket.send("3");
      else if (text.startsWith("0")) socket.send("40");
      else if (text.startsWith("40")) resolve();
      else if (text.startsWith("44")) reject(new Error(`socket.io connect refused: ${text}`));
    });
  });
}

const OPEN_CONCURRENCY = 200;
const total = orders * perOrder;
for (let start = 0; start < total; start += OPEN_CONCURRENCY) {
  const batch = Array.from({ length: Math.min(OPEN_CONCURRENCY, total - start) }, (_, k) =>
    open((start + k) % orders),
  );
  await Promise.all(batch);
}
console.log("ready");

for await (const line of console) {
  const [command, warmup, seconds] = line.trim().split(/\s+/);
  if (command !== "measure") continue;
  await Bun.sleep(Number(warmup) * 1000);
  lag = new Reservoir();
  frames = 0;
  const cpuStart = process.cpuUsage();
  const startedAt = performance.now();
  measuring = true;
  console.log("measuring");
  await Bun.sleep(Number(seconds) * 1000);
  measuring = false;
  const elapsed = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  console.log(
    JSON.stringify({
      sockets: total,
      framesPerSecond: frames / elapsed,
      lagMs: { p50: lag.percentile(50), p99: lag.percentile(99), p999: lag.percentile(99.9) },
      closedEarly,
      cpuCores: (cpu.user + cpu.system) / 1e6 / elapsed,
    }),
  );
}
process.exit(0);
