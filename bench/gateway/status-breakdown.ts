// `bun bench/gateway/status-breakdown.ts --redis-url redis://… --token <jwt> --secret <hex> --order <id>`:
// where a status read's time goes inside the gateway process. The same
// request goes through app.fetch (no sockets, no HTTP parsing) of apps
// built from the gateway's own pieces, each stage adding one to the last:
// the route's answer alone, the edge middleware, the request metrics, the
// JWT check, the rate limit (a Lua call on the real Redis), the real status
// route (schema + HMGET + answer), the access line at info. `inFlight`
// requests at a time (as autocannon's connections, so ioredis pipelines
// alike); stages interleaved in rounds; CPU per request from
// process.cpuUsage (the gateway's bottleneck), the least of the rounds
// (other work on the machine only ever adds), each measurement after a full
// collection. Then the access line alone, written by the redacting root
// logger, by an unredacted pino child and by the gateway's batched access
// log, and the request metrics' record call alone. Prints one JSON line:
// StatusBreakdown.
import { openSync, writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import pino from "pino";
import { createTokenVerifier } from "../../core/auth/token-verifier";
import { createLogger } from "../../core/observability/logger";
import { createMetricsRegistry } from "../../core/observability/metrics";
import { connectRedis } from "../../core/redis/client";
import { createTrackingRing } from "../../core/tracking-ring/tracking-ring";
import { createAccessLog } from "../../gateway/access-log";
import { loadGatewayConfig } from "../../gateway/config";
import type { GatewayEnv } from "../../gateway/context";
import { createGatewayMetrics } from "../../gateway/metrics";
import { observeRequests } from "../../gateway/middleware/observe-requests";
import { edgeGuards, requestRateLimit, tokenCheck } from "../../gateway/request-guards";
import { orderTrackingRoutes } from "../../gateway/routes/order-tracking";

export interface StatusBreakdown {
  requestsPerRound: number;
  rounds: number;
  inFlight: number;
  /** Cumulative: each stage is the one before plus one piece; CPU µs per request (least) and req/s (most) over the rounds. */
  stages: { name: string; short: string; cpuMicros: number; requestsPerSecond: number }[];
  /** CPU µs per access line (to /dev/null): through the root logger's redaction, an unredacted pino child, and the gateway's batched access log (its writes included). */
  accessLine: { redactedMicros: number; plainMicros: number; batchedMicros: number };
  /** CPU µs per call of the request metrics' recordRequest alone. */
  recordRequestMicros: number;
}

const { values: args } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    secret: { type: "string" },
    token: { type: "string" },
    order: { type: "string" },
    requests: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
    "in-flight": { type: "string", default: "100" },
  },
});
const requests = Number(args.requests);
const rounds = Number(args.rounds);
const inFlight = Number(args["in-flight"]);
const token = args.token ?? "";
const path = `/v1/orders/${args.order}/status`;

const config = loadGatewayConfig({
  REDIS_URL: args["redis-url"] ?? "",
  JWT_SECRET: args.secret ?? "",
  RATE_LIMIT_REQUESTS: "100000000",
});
const silent = pino({ level: "silent" });
const connection = await connectRedis(config.redis, "bench", silent);
if (!connection.isReady()) throw new Error("redis not reachable");
const ring = createTrackingRing({
  connection,
  ttlMs: config.trackingNodeTtlMs,
  refreshMs: config.trackingRingRefreshMs,
  logger: silent,
});
const verifier = createTokenVerifier(config.auth);
const metrics = createGatewayMetrics(createMetricsRegistry("bench"));
// What the access line costs, written where it costs a write but fills no disk.
const infoLogger = createLogger("gateway", "info", pino.destination("/dev/null"));
const devNull = openSync("/dev/null", "w");
const accessLog = createAccessLog({ tier: "gateway", write: (chunk) => writeSync(devNull, chunk) });
const FIXED_ANSWER = {
  orderId: args.order,
  status: "CONFIRMED",
  version: 1,
  pickup: { lat: 51.5, lng: -0.12 },
  dropoff: { lat: 51.52, lng: -0.1 },
};

type Piece = (app: Hono<GatewayEnv>) => void;
// The gateway's own guards (gateway/request-guards.ts), as startGateway mounts them.
const edgeMiddleware: Piece = (app) => {
  app.use(requestId());
  app.use(...edgeGuards(config));
};
const observe =
  (logger: pino.Logger): Piece =>
  (app) => {
    app.use(observeRequests({ logger, accessLog, recordRequest: metrics.recordRequest }));
  };
const jwt: Piece = (app) => {
  const clientAddress = () => "127.0.0.1"; // app.fetch has no socket to read it from
  app.use(
    "/v1/*",
    tokenCheck(config, { client: connection.client, verifier, metrics, clientAddress }),
  );
};
// The fixed answer does not wait for the count (a read-ahead route would answer before it and
// have its headers set on a built answer); the real status route reads ahead as in the gateway.
const rateLimited =
  (readAhead: boolean): Piece =>
  (app) => {
    app.use(
      "/v1/*",
      requestRateLimit(config, { client: connection.client, metrics }, { readAhead }),
    );
  };
const limitFirst = rateLimited(false);
const limitReadAhead = rateLimited(true);
const fixedAnswer: Piece = (app) => {
  app.get("/v1/orders/:id/status", (c) => c.json(FIXED_ANSWER, 200));
};
const statusRoute: Piece = (app) => {
  app.route(
    "/",
    orderTrackingRoutes({ connection, ring, orderEndedTtlMs: config.orderEndedTtlMs }),
  );
};

// The gateway mounts observeRequests between the request id and the limits; after them costs the same.
const common = [edgeMiddleware, observe(silent)];
const stages: { name: string; short: string; pieces: Piece[] }[] = [
  { name: "Hono route, fixed answer", short: "route", pieces: [fixedAnswer] },
  {
    name: "+ edge middleware (request id, limits, CORS, body limit)",
    short: "middleware",
    pieces: [edgeMiddleware, fixedAnswer],
  },
  { name: "+ request metrics", short: "metrics", pieces: [...common, fixedAnswer] },
  { name: "+ JWT check (cached)", short: "JWT", pieces: [...common, jwt, fixedAnswer] },
  {
    name: "+ rate limit (Lua in Redis)",
    short: "rate limit",
    pieces: [...common, jwt, limitFirst, fixedAnswer],
  },
  {
    name: "+ the status route (schema, HMGET sent with the count, answer)",
    short: "status route",
    pieces: [...common, jwt, limitReadAhead, statusRoute],
  },
  {
    name: "+ access line at info",
    short: "access line",
    pieces: [edgeMiddleware, observe(infoLogger), jwt, limitReadAhead, statusRoute],
  },
];
const apps = stages.map(({ pieces }) => {
  const app = new Hono<GatewayEnv>();
  for (const piece of pieces) piece(app);
  return app;
});

async function one(app: Hono<GatewayEnv>): Promise<void> {
  const response = await app.fetch(
    new Request(`http://127.0.0.1${path}`, { headers: { authorization: `Bearer ${token}` } }),
  );
  if (response.status !== 200)
    throw new Error(`answered ${response.status}: ${await response.text()}`);
  await response.arrayBuffer();
}

async function measure(
  app: Hono<GatewayEnv>,
): Promise<{ cpuMicros: number; requestsPerSecond: number }> {
  let left = requests;
  const worker = async () => {
    while (left > 0) {
      left -= 1;
      await one(app);
    }
  };
  Bun.gc(true);
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  return { cpuMicros: (used.user + used.system) / requests, requestsPerSecond: requests / seconds };
}

for (const app of apps) await measure(app);
const samples = stages.map(() => [] as { cpuMicros: number; requestsPerSecond: number }[]);
for (let round = 0; round < rounds; round += 1)
  for (const [index, app] of apps.entries()) samples[index]?.push(await measure(app));
const least = (values: number[]) => Math.min(...values);

const LINE = { requestId: crypto.randomUUID(), method: "GET", path, status: 200, ms: 1.23 };
const plainLogger = infoLogger.child({}, { redact: [] });
/** CPU µs per call of `work`, in a loop of `requests` calls. */
function loopCost(work: () => void): number {
  Bun.gc(true);
  const cpu = process.cpuUsage();
  for (let i = 0; i < requests; i += 1) work();
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / requests;
}
const loops = {
  redacted: () => infoLogger.info(LINE, "request"),
  plain: () => plainLogger.info(LINE, "request"),
  batched: () => accessLog.write(LINE),
  record: () => metrics.recordRequest("GET", "/v1/orders/{id}/status", 200, 0.0012),
};
const loopSamples = {
  redacted: [] as number[],
  plain: [] as number[],
  batched: [] as number[],
  record: [] as number[],
};
// Each round in another order: the one after a line pays for its garbage before the collection.
for (let round = 0; round <= rounds; round += 1) {
  const names = Object.keys(loops) as (keyof typeof loops)[];
  for (let i = 0; i < names.length; i += 1) {
    const name = names[(i + round) % names.length] as keyof typeof loops;
    loopSamples[name].push(loopCost(loops[name]));
  }
}
const result: StatusBreakdown = {
  requestsPerRound: requests,
  rounds,
  inFlight,
  stages: stages.map(({ name, short }, index) => ({
    name,
    short,
    cpuMicros: least((samples[index] ?? []).map((s) => s.cpuMicros)),
    requestsPerSecond: Math.max(...(samples[index] ?? []).map((s) => s.requestsPerSecond)),
  })),
  // The first round warms up.
  accessLine: {
    redactedMicros: least(loopSamples.redacted.slice(1)),
    plainMicros: least(loopSamples.plain.slice(1)),
    batchedMicros: least(loopSamples.batched.slice(1)),
  },
  recordRequestMicros: least(loopSamples.record.slice(1)),
};
console.log(JSON.stringify(result));
ring.stop();
await connection.close();
process.exit(0);
