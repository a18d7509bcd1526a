// A load process that moves PICKED_UP orders `<prefix><i>` to DELIVERED through
// transition-order.lua, the status script the gateway runs, `--rate` changes
// per second (0: as fast as it goes), over the project's own Redis connection
// (with `--ack-replicas N`, each change is acknowledged once N replicas have it,
// as the gateway's are). With `--seed` it writes the orders first. Prints one
// JSON line: {changes, failed, seconds, latencyMs: {p50, p99}}.
//   bun bench/support/load-status-changes.ts --redis redis://127.0.0.1:6379 --prefix bench-o- --count 10000 --rate 1000
//   bun bench/support/load-status-changes.ts --cluster 127.0.0.1:7000,... --ack-replicas 1 --seed ...
import { parseArgs } from "node:util";
import pino from "pino";
import type { RedisConfig } from "../../core/config/shared-config";
import { connectRedis } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { orderRecordFields } from "../../core/redis/order-record";
import { transitionOrder } from "../../core/redis/order-scripts";
import { Reservoir } from "./percentiles";

const { values: args } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    cluster: { type: "string" },
    prefix: { type: "string", default: "bench-o-" },
    count: { type: "string", default: "1000" },
    rate: { type: "string", default: "0" },
    "ack-replicas": { type: "string", default: "0" },
    seed: { type: "boolean", default: false },
  },
});
const count = Number(args.count);
const rate = Number(args.rate);
const TICK_MS = 10;
const UNPACED_IN_FLIGHT = 200;

const config: RedisConfig = args.cluster
  ? {
      mode: "cluster",
      nodes: args.cluster.split(",").map((address) => {
        const [host = "127.0.0.1", port = "0"] = address.split(":");
        return { host, port: Number(port) };
      }),
    }
  : { mode: "standalone", url: args.redis ?? "" };
const connection = await connectRedis(config, "bench-status-load", pino({ level: "silent" }), {
  ackedWrites: { replicas: Number(args["ack-replicas"]), timeoutMs: 1_000 },
  waitMs: 10_000,
});
const orderId = (i: number) => `${args.prefix}${i}`;

if (args.seed) {
  for (let from = 0; from < count; from += 1_000) {
    await Promise.all(
      Array.from({ length: Math.min(1_000, count - from) }, (_, j) =>
        connection.client.hset(
          keys.order(orderId(from + j)),
          orderRecordFields({
            orderId: orderId(from + j),
            customerId: "bench-customer",
            riderId: `bench-rider-${from + j}`,
            city: "london",
            restaurantId: "bench-restaurant",
            pickup: { lat: 51.5, lng: -0.12 },
            dropoff: { lat: 51.52, lng: -0.1 },
            status: "PICKED_UP",
            version: 4,
          }),
        ),
      ),
    );
  }
}

let failed = 0;
const latencies = new Reservoir();
const change = async (i: number): Promise<void> => {
  const startedAt = performance.now();
  try {
    await transitionOrder(connection, {
      orderId: orderId(i),
      expectedVersion: 4,
      to: "DELIVERED",
      legalFrom: ["PICKED_UP"],
    });
    latencies.add(performance.now() - startedAt);
  } catch {
    failed += 1;
  }
};

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
const latencyMs = { p50: latencies.percentile(50), p99: latencies.percentile(99) };
console.log(JSON.stringify({ changes: count - failed, failed, seconds, latencyMs }));
await connection.close();
