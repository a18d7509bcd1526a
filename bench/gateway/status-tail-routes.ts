// The bare Bun.serve routes of status-tail.ts (run as `bun status-tail-routes.ts
// <port> <redis url>`; prints "serving <port>"): each answers the status read's
// JSON after one more piece of a status read, with no Hono, no middleware, no
// metrics and no access line. The Redis commands go through ioredis as the
// gateway opens it (core/redis/client.ts), or, for the `native-` routes,
// through Bun's own `Bun.RedisClient` (auto-pipelined, in Zig) sending the
// same two commands (EVALSHA of take-rate-limit.lua, HMGET of the order).
import { RedisClient } from "bun";
import pino from "pino";
import { connectRedis } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { ORDER_FIELDS, parseOrderRecord, readOrderRecord } from "../../core/redis/order-record";
import { takeRateLimit } from "../../core/redis/scripts";

export const RAW_ROUTES = [
  "bare",
  "immediate",
  "rate-limit",
  "record",
  "both",
  "both-at-once",
  "native-rate-limit",
  "native-record",
  "native-both-at-once",
] as const;
export type RawRoute = (typeof RAW_ROUTES)[number];

export const ORDER_ID = "bench-tail-0";
const IDENTITY = "dispatcher:bench-tail";
const LIMIT = 1_000_000_000;
const WINDOW_MS = 60_000;

async function serve(port: number, redisUrl: string): Promise<void> {
  const connection = await connectRedis(
    { mode: "standalone", url: redisUrl },
    "tail",
    pino({ level: "silent" }),
  );
  if (!connection.isReady()) throw new Error("redis not reachable");
  const { client } = connection;
  const native = new RedisClient(redisUrl, { enableOfflineQueue: false });
  await native.connect();
  const lua = await Bun.file(
    new URL("../../core/redis/lua/take-rate-limit.lua", import.meta.url),
  ).text();
  const sha = (await native.send("SCRIPT", ["LOAD", lua])) as string;

  const answer = JSON.stringify({
    orderId: ORDER_ID,
    status: "CONFIRMED",
    version: 1,
    pickup: { lat: 51.5, lng: -0.12 },
    dropoff: { lat: 51.52, lng: -0.1 },
  });
  const respond = () => new Response(answer, { headers: { "content-type": "application/json" } });
  const count = () => takeRateLimit(client, IDENTITY, LIMIT, WINDOW_MS, Date.now());
  const read = async () => {
    if (!(await readOrderRecord(client, ORDER_ID))) throw new Error("no bench order");
  };
  // The same key and arguments as core's takeRateLimit, through the native client.
  const nativeCount = async () => {
    const at = Date.now();
    const key = keys.rateLimit(IDENTITY, at - (at % WINDOW_MS));
    const [allowed] = (await native.send("EVALSHA", [
      sha,
      "1",
      key,
      String(LIMIT),
      String(WINDOW_MS),
    ])) as [number, number];
    if (allowed !== 1) throw new Error("refused");
  };
  const orderKey = keys.order(ORDER_ID);
  const nativeRead = async () => {
    const values = (await native.send("HMGET", [orderKey, ...ORDER_FIELDS])) as (string | null)[];
    if (!parseOrderRecord(ORDER_ID, values)) throw new Error("no bench order");
  };
  /** A route that answers after `work`. */
  const after = (work: () => Promise<unknown>) => async (): Promise<Response> => {
    await work();
    return respond();
  };
  const routes: Record<RawRoute, () => Response | Promise<Response>> = {
    bare: respond,
    immediate: after(() => new Promise((resolve) => setImmediate(resolve))),
    "rate-limit": after(count),
    record: after(read),
    both: after(async () => {
      await count();
      await read();
    }),
    "both-at-once": after(() => Promise.all([count(), read()])),
    "native-rate-limit": after(nativeCount),
    "native-record": after(nativeRead),
    "native-both-at-once": after(() => Promise.all([nativeCount(), nativeRead()])),
  };
  const server = Bun.serve({
    port,
    hostname: "127.0.0.1",
    fetch(request) {
      const route = routes[new URL(request.url).pathname.slice(1) as RawRoute];
      return route ? route() : new Response("no such route", { status: 404 });
    },
  });
  console.log(`serving ${server.port}`);
}

if (import.meta.main) await serve(Number(process.argv[2]), process.argv[3] ?? "");
