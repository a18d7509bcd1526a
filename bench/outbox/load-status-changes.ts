// A load process for the outbox relay bench: moves seeded PICKED_UP orders
// `<prefix><i>` to DELIVERED through transition-order.lua (the status script
// the gateway runs), `--rate` changes per second (0: as fast as it goes).
// Prints one JSON line: {changes, failed, seconds}.
//   bun bench/outbox/load-status-changes.ts --redis redis://127.0.0.1:6379 --prefix bench-o- --count 10000 --rate 1000
import { parseArgs } from "node:util";
import pino from "pino";
import { createRedisConnection } from "../../core/redis/client";
import { transitionOrder } from "../../core/redis/order-scripts";

const { values: args } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    prefix: { type: "string", default: "bench-o-" },
    count: { type: "string", default: "1000" },
    rate: { type: "string", default: "0" },
  },
});
const count = Number(args.count);
const rate = Number(args.rate);
const TICK_MS = 10;
const UNPACED_IN_FLIGHT = 200;

const connection = createRedisConnection(
  { mode: "standalone", url: args.redis ?? "" },
  "bench-status-load",
  pino({ level: "silent" }),
);
await connection.waitReady(5_000);
let failed = 0;
const change = (i: number): Promise<void> =>
  transitionOrder(connection, {
    orderId: `${args.prefix}${i}`,
    expectedVersion: 4,
    to: "DELIVERED",
    legalFrom: ["PICKED_UP"],
  }).then(
    () => undefined,
    () => {
      failed += 1;
    },
  );

const startedAt = performance.now();
let next = 0;
if (rate > 0) {
  // Paced: every tick, the changes due by now (no catch-up burst beyond what is due).
  const inFlight: Promise<void>[] = [];
  while (next < count) {
    const due = Math.min(count, Math.floor(((performance.now() - startedAt) / 1000) * rate));
    for (; next < due; next++) inFlight.push(change(next));
    await Bun.sleep(TICK_MS);
  }
  await Promise.all(inFlight);
} else {
  await Promise.all(
    Array.from({ length: UNPACED_IN_FLIGHT }, async () => {
      while (next < count) await change(next++);
    }),
  );
}
const seconds = (performance.now() - startedAt) / 1000;
console.log(JSON.stringify({ changes: count - failed, failed, seconds }));
await connection.close();
