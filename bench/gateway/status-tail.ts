// `bun bench/gateway/status-tail.ts [--rate 2500] [--seconds 5] [--rounds 2] [--pin]
//   [--only gateway-bare,gateway-status] [--variant 'heap256: BUN_JSC_largeHeapSize=268435456 ...']`:
// where the status read's latency tail comes from. The lean generator
// (open loop) loads, in alternating rounds, routes that each add one piece
// of a status read, on bare Bun.serve (no Hono, no middleware, no metrics,
// no access line: status-tail-routes.ts), then the real gateway's bare
// route and status read:
//   bare          a fixed answer (the status read's JSON)
//   immediate     the same after one setImmediate (an async hop, no I/O)
//   rate-limit    after the rate limit's script (core takeRateLimit: one EVALSHA)
//   record        after the record read (HMGET, parsed)
//   both          after both, one after the other (what a status read waits for)
//   both-at-once  after both, sent in the same turn (one Redis round trip)
//   native-rate-limit, native-record, native-both-at-once
//                 the same commands through Bun's own Bun.RedisClient
//   gateway-bare  the gateway's /healthz
//   gateway-status the gateway's GET /v1/orders/{id}/status
// One ioredis connection as the gateway opens it (core/redis/client.ts). With
// --pin, the servers run on core 0, Redis and the generator on core 1 (as
// on a node whose cores are the gateway's, Redis elsewhere). --only picks
// the routes. Each --variant '[label:] NAME=value NAME=value ...' (as
// gc-settings-ab.ts takes them: bench/support/env-variant.ts) starts another
// raw server and gateway with those variables (collector settings, say),
// loaded in turn with the plain ones as "<route>+label". The servers run
// with JavaScriptCore's GC log on: each run reports the server's
// collections, their pauses and the heap it allocated per request (complete
// only when no timer collects: BUN_JSC_collectionTimerMaxPercentCPU=0 and
// BUN_GC_TIMER_DISABLE=1), and Redis's CPU per request. Requests still
// unanswered after the run's grace are counted, not timed. Prints one line
// per run, then one JSON line: StatusTail.
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { mintToken } from "../../core/auth/mint-token";
import { freePort } from "../../test/support/free-port";
import { startRedis } from "../../test/support/redis-server";
import { type GcMeter, gcMeter } from "../ingest/gc-log";
import { moveToCpus } from "../ingest/servers-under-test";
import { lineReader, spawnBun, waitForOk } from "../support/child";
import { type EnvVariant, parseEnvVariant } from "../support/env-variant";
import { cpuSeconds, cpuTimes } from "../support/process-stats";
import { seedBenchOrders } from "../support/seed-orders";
import type { LeanLoadResult } from "./lean-http-load";
import { ORDER_ID, RAW_ROUTES } from "./status-tail-routes";

const ROUTES = [...RAW_ROUTES, "gateway-bare", "gateway-status"] as const;
type Route = (typeof ROUTES)[number];

export interface StatusTail {
  rate: number;
  seconds: number;
  rounds: number;
  pinned: boolean;
  /** Per --variant label, the variables of its servers ("+label" in `runs`). */
  variants: Record<string, Readonly<Record<string, string>>>;
  loadAverage: { start: number; end: number };
  /**
   * Per route (with "+label" for a --variant's servers), one entry per round: latency ms (from
   * due time), send lag p99, server CPU µs per request, the server's collections and pauses.
   */
  runs: Record<
    string,
    {
      p50: number;
      p99: number;
      p999: number;
      max: number;
      sendLagP99: number;
      /** Requests not answered by the end of the run's grace (queued too long, or a connection error). */
      unanswered: number;
      userMicros: number;
      systemMicros: number;
      /** Redis's CPU µs (user + system) per request. */
      redisMicros: number;
      collections: number;
      /** Heap KB allocated per request, as the GC log counts it: complete only with both GC timers off. */
      allocatedKb: number;
      gcPauseMs: number;
      gcMaxPauseMs: number;
    }[]
  >;
}

const WARM_UP_SECONDS = 1;

interface ServerSet {
  /** "" for the servers as deployed, "+label" for a --variant's. */
  suffix: string;
  raw: Subprocess<"ignore", "pipe", "pipe">;
  gateway: Subprocess<"ignore", "ignore", "pipe">;
  gatewayPort: number;
  rawPort: number;
  gc: { raw: GcMeter; gateway: GcMeter };
}

async function startSet(
  suffix: string,
  redisUrl: string,
  secret: string,
  env: Readonly<Record<string, string>>,
): Promise<ServerSet> {
  const [rawPort, gatewayPort] = [await freePort(), await freePort()];
  // JavaScriptCore's GC log on stderr (a few lines per collection): counted per run.
  const logged = { ...process.env, LOG_LEVEL: "warn", BUN_JSC_logGC: "1", ...env };
  const raw = Bun.spawn(
    [process.execPath, join(import.meta.dir, "status-tail-routes.ts"), String(rawPort), redisUrl],
    { env: logged, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const gateway = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "..", "gateway", "main.ts")],
    {
      env: {
        ...logged,
        REDIS_URL: redisUrl,
        JWT_SECRET: secret,
        GATEWAY_PORT: String(gatewayPort),
        RATE_LIMIT_REQUESTS: "1000000000",
        LOG_LEVEL: "info",
      },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    },
  );
  const echo = (line: string) => console.error(line);
  const gc = {
    raw: gcMeter(raw.stderr, "bun", echo),
    gateway: gcMeter(gateway.stderr, "bun", echo),
  };
  await lineReader(raw).until((line) => line.startsWith("serving"));
  await waitForOk(`http://127.0.0.1:${gatewayPort}/readyz`);
  return { suffix, raw, gateway, gatewayPort, rawPort, gc };
}

async function drive(options: {
  rate: number;
  seconds: number;
  rounds: number;
  pin: boolean;
  only: readonly Route[];
  variants: readonly EnvVariant[];
}): Promise<StatusTail> {
  const { rate, seconds, rounds, pin, only, variants } = options;
  const redis = await startRedis();
  const secret = randomBytes(32).toString("hex");
  const sets: ServerSet[] = [];
  try {
    await seedBenchOrders(redis.url, 1, { orderPrefix: "bench-tail-" });
    sets.push(await startSet("", redis.url, secret, {}));
    for (const { label, env } of variants)
      sets.push(await startSet(`+${label}`, redis.url, secret, env));
    if (pin) {
      for (const set of sets)
        for (const pid of [set.raw.pid, set.gateway.pid]) moveToCpus(pid, "0");
      moveToCpus(redis.pid, "1");
    }
    const token = await mintToken(secret, { sub: "bench-tail", role: "dispatcher" });
    const urlOf = (set: ServerSet, route: Route) =>
      route === "gateway-bare"
        ? `http://127.0.0.1:${set.gatewayPort}/healthz`
        : route === "gateway-status"
          ? `http://127.0.0.1:${set.gatewayPort}/v1/orders/${ORDER_ID}/status`
          : `http://127.0.0.1:${set.rawPort}/${route}`;
    const load = async (set: ServerSet, route: Route, runSeconds: number) => {
      const child = spawnBun(join(import.meta.dir, "lean-http-load.ts"), [
        ...["--url", urlOf(set, route), "--seconds", String(runSeconds)],
        ...["--rate", String(rate), "--token", token],
      ]);
      if (pin) moveToCpus(child.pid, "1");
      const onGateway = route.startsWith("gateway");
      const pid = onGateway ? set.gateway.pid : set.raw.pid;
      const before = cpuTimes(pid);
      const redisBefore = cpuSeconds(redis.pid);
      const gcWindow = (onGateway ? set.gc.gateway : set.gc.raw).open();
      const result = JSON.parse(
        await lineReader(child).until((line) => line.startsWith("{")),
      ) as LeanLoadResult;
      const after = cpuTimes(pid);
      const redisSeconds = cpuSeconds(redis.pid) - redisBefore;
      const gc = gcWindow.close();
      if (result.non2xx > 0) throw new Error(`${route}: ${result.non2xx} non-2xx answers`);
      const perRequest = (seconds: number) => Math.round((seconds * 1e6) / result.answered);
      return {
        p50: result.latencyMs.p50,
        p99: result.latencyMs.p99,
        p999: result.latencyMs.p999,
        max: result.latencyMs.max,
        sendLagP99: result.sendLagMs.p99,
        unanswered: result.errors,
        userMicros: perRequest(after.user - before.user),
        systemMicros: perRequest(after.system - before.system),
        redisMicros: perRequest(redisSeconds),
        collections: gc.collections,
        allocatedKb: Math.round(gc.allocatedBytes / 1024 / result.answered),
        gcPauseMs: Math.round(gc.pauseMs * 10) / 10,
        gcMaxPauseMs: Math.round(gc.maxPauseMs * 10) / 10,
      };
    };
    const loadStart = loadavg()[0] ?? 0;
    const runs: StatusTail["runs"] = {};
    for (let round = 0; round < rounds; round += 1)
      for (const route of only)
        for (const set of sets) {
          const name = route + set.suffix;
          await load(set, route, WARM_UP_SECONDS);
          const run = await load(set, route, seconds);
          runs[name] = [...(runs[name] ?? []), run];
          console.log(
            `${name.padEnd(21)} p50 ${run.p50} p99 ${run.p99} p99.9 ${run.p999} max ${run.max} ms, send lag p99 ${run.sendLagP99} ms, ${run.unanswered} unanswered, CPU µs/request user ${run.userMicros} system ${run.systemMicros}, Redis ${run.redisMicros}, GC ${run.collections} (pauses ${run.gcPauseMs} ms, longest ${run.gcMaxPauseMs}; ${run.allocatedKb} KB/request counted)`,
          );
        }
    return {
      rate,
      seconds,
      rounds,
      pinned: pin,
      variants: Object.fromEntries(variants.map(({ label, env }) => [label, env])),
      loadAverage: { start: loadStart, end: loadavg()[0] ?? 0 },
      runs,
    };
  } finally {
    for (const set of sets) {
      set.raw.kill("SIGKILL");
      set.gateway.kill("SIGKILL");
    }
    await redis.stop();
  }
}

const { values: args } = parseArgs({
  options: {
    rate: { type: "string", default: "2500" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    pin: { type: "boolean", default: false },
    only: { type: "string", default: ROUTES.join(",") },
    variant: { type: "string", multiple: true, default: [] },
  },
});
const only = (args.only ?? "").split(",") as Route[];
for (const route of only)
  if (!ROUTES.includes(route)) throw new Error(`--only: no route ${route} (${ROUTES})`);
const variants = (args.variant ?? []).map(parseEnvVariant);
const result = await drive({
  rate: Number(args.rate),
  seconds: Number(args.seconds),
  rounds: Number(args.rounds),
  pin: args.pin ?? false,
  only,
  variants,
});
console.log(JSON.stringify(result));
process.exit(0);
