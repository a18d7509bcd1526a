import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { join } from "node:path";
import { mintToken } from "../../core/auth/mint-token";
import { freePort } from "../../test/support/free-port";
import { startRedis } from "../../test/support/redis-server";
import { lineReader, spawnBun, waitForOk } from "../support/child";
import { cpuMeter } from "../support/process-stats";
import { seedBenchOrders } from "../support/seed-orders";
import type { StatusBreakdown } from "./status-breakdown";

export interface GatewayBenchOptions {
  seconds: number;
  /** Offered rates (req/s) of the latency curve: status reads and the bare route at each. */
  statusRates: number[];
  /** Rate for the offers run (req/s); each offer needs a fresh seeded order. */
  offerRate: number;
  /** Requests per stage and round of the in-process breakdown of a status read. */
  breakdownRequests: number;
  progress: (line: string) => void;
}

export interface HttpRun {
  /** The load generator: autocannon, or the lean one (bench/gateway/lean-http-load.ts). */
  tool: "autocannon" | "lean";
  requestsPerSecond: number;
  /** p999 and max: the lean generator only. */
  latencyMs: { p50: number; p99: number; p999?: number; max?: number };
  /** Lean, open loop: how late requests left their due time (part of the latency). */
  sendLagMs?: { p50: number; p99: number; max: number };
  /** Lean: answers counted by the load generator, and the requests the gateway's own metrics counted on that route meanwhile. */
  answered?: number;
  served?: number;
  non2xx: number;
  errors: number;
  cpu: Record<string, number>;
}

export interface GatewayBenchResult {
  options: Omit<GatewayBenchOptions, "progress">;
  hello: HttpRun;
  statusMax: HttpRun;
  /** Latency against offered load: the bare route and status reads at each rate. */
  curve: { rate: number; bare: HttpRun; status: HttpRun }[];
  /** The lean generator against autocannon: the bare route at the same rate, back to back. */
  validation: { rate: number; autocannon: HttpRun; lean: HttpRun };
  offers: HttpRun;
  /** The machine's 1-minute load average at the start and the end of the part. */
  loadAverage: { start: number; end: number };
  ratio: number;
  /** Where a status read's CPU goes inside the gateway (bench/gateway/status-breakdown.ts). */
  breakdown: StatusBreakdown;
}

/** Runs of one gateway bench: its time is about this many runs of `seconds` each, plus the breakdown's. */
export const gatewayBenchRuns = (options: { statusRates: number[] }) =>
  5 + 2 * options.statusRates.length;
/** The rate at which the lean generator is checked against autocannon (issue 12's latency goal's). */
const VALIDATION_RATE = 10_000;
const BREAKDOWN_ROUNDS = 7;

const ROOT = join(import.meta.dir, "..", "..");
const OFFER_PREFIX = "bench-offer-";

/**
 * The gateway benchmark (each load in its own process): a bare route on
 * the same server as the baseline (`/healthz`: no token, no Redis), then
 * `GET /v1/orders/{id}/status` (JWT + rate limit + Redis read), as fast as
 * each goes (the lean generator, closed loop) and at each offered rate of
 * the latency curve (open loop, the bare route at every rate too); the lean
 * generator checked against autocannon on the bare route at 10,000 req/s;
 * `POST /v1/dispatch/offers` (JWT + rate limit + two Redis round trips, one
 * Lua; autocannon, which builds each offer's body).
 * The gateway runs as deployed: metrics on, an access line per request at
 * info (to /dev/null). Then the in-process breakdown of a status read, on
 * the same Redis.
 */
export async function runGatewayBench(options: GatewayBenchOptions): Promise<GatewayBenchResult> {
  const { seconds, statusRates, offerRate, breakdownRequests, progress } = options;
  const redis = await startRedis();
  const secret = randomBytes(32).toString("hex");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const gateway = Bun.spawn([process.execPath, join(ROOT, "gateway", "main.ts")], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      JWT_SECRET: secret,
      GATEWAY_PORT: String(port),
      RATE_LIMIT_REQUESTS: "100000000",
      LOG_LEVEL: "info",
    },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "inherit",
  });
  try {
    const offers = offerRate * (seconds + 1);
    await seedBenchOrders(redis.url, offers, { orderPrefix: OFFER_PREFIX });
    await waitForOk(`${base}/readyz`);
    const dispatcher = await mintToken(secret, { sub: "bench-dispatcher", role: "dispatcher" });
    const loadStart = loadavg()[0] ?? 0;
    /** Requests the gateway's metrics have counted on one route template (every method and status). */
    const servedOn = async (route: string) => {
      const text = await (await fetch(`${base}/metrics`)).text();
      let total = 0;
      for (const line of text.split("\n"))
        if (line.startsWith("edge_gateway_requests_total{") && line.includes(`route="${route}"`))
          total += Number(line.slice(line.lastIndexOf(" ") + 1));
      return total;
    };
    const routeOf = (path: string) => (path === "/healthz" ? path : "/v1/orders/{id}/status");
    const load = async (
      label: string,
      path: string,
      args: string[],
      tool: HttpRun["tool"] = "lean",
    ): Promise<HttpRun> => {
      progress(`gateway: ${label} (${tool}), ${seconds} s`);
      const servedBefore = tool === "lean" ? await servedOn(routeOf(path)) : 0;
      const child = spawnBun(
        join(import.meta.dir, tool === "lean" ? "lean-http-load.ts" : "load-http.ts"),
        ["--url", `${base}${path}`, "--seconds", String(seconds), ...args],
      );
      const meter = cpuMeter({ gateway: gateway.pid, redis: redis.pid, load: child.pid });
      const result = JSON.parse(
        await lineReader(child).until((line) => line.startsWith("{")),
      ) as Omit<HttpRun, "cpu" | "tool">;
      const cpu = meter.stop();
      const served = tool === "lean" ? (await servedOn(routeOf(path))) - servedBefore : undefined;
      const run: HttpRun = { tool, ...result, cpu, ...(served === undefined ? {} : { served }) };
      progress(
        `  ${Math.round(run.requestsPerSecond)} req/s, p99 ${run.latencyMs.p99} ms, non-2xx ${run.non2xx}, errors ${run.errors}`,
      );
      return run;
    };
    const statusPath = `/v1/orders/${OFFER_PREFIX}0/status`;
    const token = ["--token", dispatcher];
    const hello = await load("bare route (/healthz), as fast as it goes", "/healthz", []);
    const statusMax = await load("order status, as fast as it goes", statusPath, token);
    const validationRate = ["--rate", String(VALIDATION_RATE)];
    const validation = {
      rate: VALIDATION_RATE,
      autocannon: await load(
        `bare route at ${VALIDATION_RATE} req/s`,
        "/healthz",
        validationRate,
        "autocannon",
      ),
      lean: await load(`bare route at ${VALIDATION_RATE} req/s`, "/healthz", validationRate),
    };
    const curve: GatewayBenchResult["curve"] = [];
    for (const rate of statusRates) {
      const bare = await load(`bare route at ${rate} req/s`, "/healthz", ["--rate", String(rate)]);
      const status = await load(`order status at ${rate} req/s`, statusPath, [
        ...token,
        ...["--rate", String(rate)],
      ]);
      curve.push({ rate, bare, status });
    }
    const offerRun = await load(
      `dispatch offers at ${offerRate} req/s`,
      "/v1/dispatch/offers",
      [
        ...["--token", dispatcher, "--rate", String(offerRate), "--connections", "20"],
        ...["--offers", String(offers), "--offer-prefix", OFFER_PREFIX],
      ],
      "autocannon",
    );
    progress("gateway: where a status read's CPU goes (in process)");
    const breakdownChild = spawnBun(join(import.meta.dir, "status-breakdown.ts"), [
      ...["--redis-url", redis.url, "--secret", secret, "--token", dispatcher],
      ...["--order", `${OFFER_PREFIX}0`, "--requests", String(breakdownRequests)],
      ...["--rounds", String(BREAKDOWN_ROUNDS)],
    ]);
    const breakdown = JSON.parse(
      await lineReader(breakdownChild).until((line) => line.startsWith("{")),
    ) as StatusBreakdown;
    return {
      options: { seconds, statusRates, offerRate, breakdownRequests },
      hello,
      statusMax,
      curve,
      validation,
      offers: offerRun,
      loadAverage: { start: loadStart, end: loadavg()[0] ?? 0 },
      ratio: statusMax.requestsPerSecond / hello.requestsPerSecond,
      breakdown,
    };
  } finally {
    gateway.kill("SIGKILL");
    await redis.stop();
  }
}
