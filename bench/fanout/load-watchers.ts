// A load process of customer apps: `--orders` orders × `--per-order` sockets
// on one tracking node (or the raw baseline server), counting frames and
// the lag from the ingest's receipt of each ping (`receivedAt`) to arrival.
// Prints `ready` once every socket is open, then one JSON line of results.
//   bun bench/fanout/load-watchers.ts --url ws://127.0.0.1:8090 --orders 2500 --per-order 4 --token <jwt> --seconds 10
import { parseArgs } from "node:util";
import { TRACKING_SUBPROTOCOLS } from "../../core/protocol/tracking-protocol";
import { measureWindow } from "../support/measure-window";
import { Reservoir } from "../support/percentiles";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "ws://127.0.0.1:8090" },
    orders: { type: "string", default: "2500" },
    "per-order": { type: "string", default: "4" },
    "order-prefix": { type: "string", default: "bench-order-" },
    token: { type: "string", default: "" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
  },
});
const orders = Number(args.orders);
const perOrder = Number(args["per-order"]);
const lag = new Reservoir();
/** Where a tracking.v2.json position frame's receipt time starts (an int64: a decimal string). */
const RECEIVED_AT = '"receivedAtMs":"';
let frames = 0;
let measuring = false;
let closedEarly = 0;

function onMessage(event: MessageEvent): void {
  if (!measuring) return;
  frames += 1;
  const text = typeof event.data === "string" ? event.data : "";
  // Cheap field read: a full JSON.parse per frame would make this process the bottleneck.
  const at = text.indexOf(RECEIVED_AT);
  if (at >= 0)
    lag.add(Date.now() - Number.parseInt(text.slice(at + RECEIVED_AT.length, at + 40), 10));
}

const sockets: WebSocket[] = [];
const OPEN_CONCURRENCY = 200;
for (let start = 0; start < orders * perOrder; start += OPEN_CONCURRENCY) {
  const batch = Array.from(
    { length: Math.min(OPEN_CONCURRENCY, orders * perOrder - start) },
    (_, k) => {
      const order = (start + k) % orders;
      const socket = new WebSocket(
        `${args.url}/v1/orders/${args["order-prefix"]}${order}/track?access_token=${args.token}`,
        [TRACKING_SUBPROTOCOLS.json],
      );
      socket.addEventListener("message", onMessage);
      sockets.push(socket);
      return new Promise<void>((resolve, reject) => {
        socket.addEventListener("open", () => resolve(), { once: true });
        socket.addEventListener(
          "close",
          (event) => {
            closedEarly += 1;
            reject(new Error(`socket closed ${event.code} ${event.reason}`));
          },
          { once: true },
        );
      });
    },
  );
  await Promise.all(batch);
}
console.log("ready");

const { elapsed, cpuCores } = await measureWindow(
  Number(args.warmup),
  Number(args.seconds),
  (open) => {
    measuring = open;
  },
);
for (const socket of sockets) socket.close();
console.log(
  JSON.stringify({
    sockets: sockets.length,
    framesPerSecond: frames / elapsed,
    lagMs: { p50: lag.percentile(50), p99: lag.percentile(99), p999: lag.percentile(99.9) },
    closedEarly,
    cpuCores,
  }),
);
process.exit(0);
