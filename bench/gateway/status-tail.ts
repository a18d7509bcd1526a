// `bun bench/gateway/status-tail.ts [--rate 2500] [--seconds 5] [--rounds 2] [--pin]`:
// where the status read's latency tail comes from. The lean generator
// (open loop) loads, in alternating rounds, routes that each add one piece
// of a status read, on bare Bun.serve (no Hono, no middleware, no metrics,
// no access line: this file run with --serve), then the real gateway's
// bare route and status read:
//   bare          a fixed answer (the status read's JSON)
//   immediate     the same after one setImmediate (an async hop, no I/O)
//   rate-limit    after the rate limit's script (core takeRateLimit: one EVALSHA)
//   record        after the record read (HMGET, parsed)
//   both          after both, one after the other (what a status read waits for)
//   both-at-once  after both, sent in the same turn (one Redis round trip)
//   gateway-bare  the gateway's /healthz
//   gateway-status the gateway's GET /v1/orders/{id}/status
// One Redis connection as the gateway opens it (core/redis/client.ts). With
// --pin, the servers run on core 0, Redis and the generator on core 1 (as
// on a node whose cores are the gateway's, Redis elsewhere).
// Prints one line per run, then one JSON line: StatusTail.
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { mintToken } from "../../core/auth/mint-token";
import { createRedisConnection } from "../../core/redis/client";
import { readOrderRecord } from "../../core/redis/order-record";
import { takeRateLimit } from "../../core/redis/scripts";
import { freePort, startRedis } from "../../test/support/redis-server";
import { moveToCpus } from "../ingest/servers-under-test";
import { lineReader, spawnBun, waitForOk } from "../support/child";
import { cpuTimes } from "../support/process-stats";
import { seedBenchOrders } from "../support/seed-orders";
import type { LeanLoadResult } from "./lean-http-load";

const RAW_ROUTES = ["bare", "immediate", "rate-limit", "record", "both", "both-at-once"] as const;
const VARIANTS = [...RAW_ROUTES, "gateway-bare", "gateway-status"] as const;
type Variant = (typeof VARIANTS)[number];

export interface StatusTail {
  rate: number;
  seconds: number;
  rounds: number;
  pinned: boolean;
  loadAverage: { start: number; end: number };
  /** Per variant, one entry per round: latency ms (from due time), send lag p99, server CPU µs per request. */
  runs: Record<
    Variant,
    {
      p50: number;
      p99: number;
      p999: number;
      max: number;
      sendLagP99: number;
      userMicros: number;
      systemMicros: number;
    }[]
  >;
}

const ORDER_ID = "bench-tail-0";
const IDENTITY = "dispatcher:bench-tail";
const WARM_UP_SECONDS = 1;

async function serve(port: number, redisUrl: string): Promise<void> {
  const connection = createRedisConnection(
    { mode: "standalone", url: redisUrl },
    "tail",
    pino({ level: "silent" }),
  );
  if (!(await connection.waitReady(5_000))) throw new Error("redis not reachable");
  const { client } = connection;
  const answer = JSON.stringify({
    orderId: ORDER_ID,
    status: "CONFIRMED",
    version: 1,
    pickup: { lat: 51.5, lng: -0.12 },
    dropoff: { lat: 51.52, lng: -0.1 },
  });
  const respond = () => new Response(answer, { headers: { "content-type": "application/json" } });
  const count = () => takeRateLimit(client, IDENTITY, 1_000_000_000, 60_000, Date.now());
  const read = async () => {
    if (!(await readOrderRecord(client, ORDER_ID))) throw new Error("no bench order");
  };
  /** A route that answers after `work`. */
  const after = (work: () => Promise<unknown>) => async (): Promise<Response> => {
    await work();
    return respond();
  };
  const routes: Record<(typeof RAW_ROUTES)[number], () => Response | Promise<Response>> = {
    bare: respond,
    immediate: after(() => new Promise((resolve) => setImmediate(resolve))),
    "rate-limit": after(count),
    record: after(read),
    both: after(async () => {
      await count();
      await read();
    }),
    "both-at-once": after(() => Promise.all([count(), read()])),
  };
  const server = Bun.serve({
    port,
    hostname: "127.0.0.1",
    fetch(request) {
      const route = routes[new URL(request.url).pathname.slice(1) as keyof typeof routes];
      return route ? route() : new Response("no such route", { status: 404 });
    },
  });
  console.log(`serving ${server.port}`);
}

async function drive(options: {
  rate: number;
  seconds: number;
  rounds: number;
  pin: boolean;
}): Promise<StatusTail> {
  const { rate, seconds, rounds, pin } = options;
  const redis = await startRedis();
  const secret = randomBytes(32).toString("hex");
  const [rawPort, gatewayPort] = [await freePort(), await freePort()];
  const raw = spawnBun(import.meta.path, [
    ...["--serve", String(rawPort), "--redis-url", redis.url],
  ]);
  const gateway = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "..", "gateway", "main.ts")],
    {
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        JWT_SECRET: secret,
        GATEWAY_PORT: String(gatewayPort),
        RATE_LIMIT_REQUESTS: "1000000000",
        LOG_LEVEL: "info",
      },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "inherit",
    },
  );
  try {
    await seedBenchOrders(redis.url, 1, { orderPrefix: "bench-tail-" });
    await lineReader(raw).until((line) => line.startsWith("serving"));
    await waitForOk(`http://127.0.0.1:${gatewayPort}/readyz`);
    if (pin) {
      for (const pid of [raw.pid, gateway.pid]) moveToCpus(pid, "0");
      moveToCpus(redis.pid, "1");
    }
    const token = await mintToken(secret, { sub: "bench-tail", role: "dispatcher" });
    const urlOf = (variant: Variant) =>
      variant === "gateway-bare"
        ? `http://127.0.0.1:${gatewayPort}/healthz`
        : variant === "gateway-status"
          ? `http://127.0.0.1:${gatewayPort}/v1/orders/${ORDER_ID}/status`
          : `http://127.0.0.1:${rawPort}/${variant}`;
    const load = async (variant: Variant, runSeconds: number) => {
      const child = spawnBun(join(import.meta.dir, "lean-http-load.ts"), [
        ...["--url", urlOf(variant), "--seconds", String(runSeconds)],
        ...["--rate", String(rate), "--token", token],
      ]);
      if (pin) moveToCpus(child.pid, "1");
      const pid = variant.startsWith("gateway") ? gateway.pid : raw.pid;
      const before = cpuTimes(pid);
      const result = JSON.parse(
        await lineReader(child).until((line) => line.startsWith("{")),
      ) as LeanLoadResult;
      const after = cpuTimes(pid);
      if (result.non2xx + result.errors > 0)
        throw new Error(`${variant}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      const perRequest = (seconds: number) => Math.round((seconds * 1e6) / result.answered);
      return {
        p50: result.latencyMs.p50,
        p99: result.latencyMs.p99,
        p999: result.latencyMs.p999,
        max: result.latencyMs.max,
        sendLagP99: result.sendLagMs.p99,
        userMicros: perRequest(after.user - before.user),
        systemMicros: perRequest(after.system - before.system),
      };
    };
    const loadStart = loadavg()[0] ?? 0;
    const runs = Object.fromEntries(
      VARIANTS.map((variant) => [variant, [] as StatusTail["runs"][Variant]]),
    ) as StatusTail["runs"];
    for (let round = 0; round < rounds; round += 1)
      for (const variant of VARIANTS) {
        await load(variant, WARM_UP_SECONDS);
        const run = await load(variant, seconds);
        runs[variant].push(run);
        console.log(
          `${variant.padEnd(15)} p50 ${run.p50} p99 ${run.p99} p99.9 ${run.p999} max ${run.max} ms, send lag p99 ${run.sendLagP99} ms, CPU µs/request user ${run.userMicros} system ${run.systemMicros}`,
        );
      }
    return {
      rate,
      seconds,
      rounds,
      pinned: pin,
      loadAverage: { start: loadStart, end: loadavg()[0] ?? 0 },
      runs,
    };
  } finally {
    raw.kill("SIGKILL");
    gateway.kill("SIGKILL");
    await redis.stop();
  }
}

const { values: args } = parseArgs({
  options: {
    serve: { type: "string" },
    "redis-url": { type: "string" },
    rate: { type: "string", default: "2500" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    pin: { type: "boolean", default: false },
  },
});
if (args.serve) await serve(Number(args.serve), args["redis-url"] ?? "");
else {
  const result = await drive({
    rate: Number(args.rate),
    seconds: Number(args.seconds),
    rounds: Number(args.rounds),
    pin: args.pin ?? false,
  });
  console.log(JSON.stringify(result));
  process.exit(0);
}
