// `bun run demo`: the whole platform on one machine, with simulated riders.
import { join } from "node:path";
import { Redis } from "ioredis";
import { devSecretFile, ensureDevSecret, shownPath } from "../core/auth/dev-secret";
import { mintToken } from "../core/auth/mint-token";
import { parseCommandLine } from "../core/config/command-line";
import { ConfigError, readInt, readOptionalString, readPort } from "../core/config/env";
import { createLogger } from "../core/observability/logger";
import { createSupervisor, waitForHttp } from "./child-processes";
import { startDemoOrders } from "./city/demo-orders";
import { startSimulatedCity } from "./city/simulated-city";
import { canListen, ephemeralPort } from "./ports";

parseCommandLine(
  {
    usage: "./edge demo",
    summary:
      "Runs the whole platform on this machine: Redis (unless REDIS_URL is set), the stand-in\nupstream, a gateway, an ingest, three tracking nodes and a simulated city; prints\nthe live map's link, tokens and curl commands. Ctrl-C stops everything.",
    flags: {},
    notes: [
      "environment: DEMO_RIDERS (300), GATEWAY_PORT (8080), INGEST_PORT (8081),",
      "INGEST_HTTP_PORT (8082), TRACKING_PORT (8090, +1, +2), UPSTREAM_PORT (8070),",
      "REDIS_URL or REDIS_CLUSTER_NODES, JWT_SECRET (else the demo's own, kept in",
      "DEV_JWT_SECRET_FILE, default .tmp/dev-jwt-secret, for `./edge token`).",
    ].join("\n"),
  },
  Bun.argv.slice(2),
);
const logger = createLogger("demo");
const env = process.env;
const supervisor = createSupervisor(join(import.meta.dir, "..", ".tmp", "demo-logs"));
const TRACKING_NODES = 3;
const settings = readSettings();
const { secretFile, jwtSecret, ingestPort, ingestHttpPort, trackingPort, gatewayPort } = settings;
const { upstreamPort, riders } = settings;

/** The demo's settings; a bad value ends it with one line naming the variable (exit 2). */
function readSettings() {
  try {
    // Without JWT_SECRET the demo keeps its own where `./edge token` finds it.
    const secretFile = devSecretFile(env);
    return {
      secretFile,
      jwtSecret: readOptionalString(env, "JWT_SECRET") ?? ensureDevSecret(secretFile),
      ingestPort: readPort(env, "INGEST_PORT", 8081),
      ingestHttpPort: readPort(env, "INGEST_HTTP_PORT", 8082),
      trackingPort: readPort(env, "TRACKING_PORT", 8090),
      gatewayPort: readPort(env, "GATEWAY_PORT", 8080),
      upstreamPort: readPort(env, "UPSTREAM_PORT", 8070),
      riders: readInt(env, "DEMO_RIDERS", 300, { min: 0, max: 20_000 }),
    };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fail(error.message);
  }
}

await refuseTakenPorts();

/**
 * Every port the demo's processes will bind must be free and distinct, or the
 * demo stops at once with one line naming the variable (exit 2). Otherwise a
 * tier crashes on EADDRINUSE while the simulated city talks to whatever holds
 * the port (another demo: refused tokens, "the first order" undefined).
 */
async function refuseTakenPorts(): Promise<void> {
  const wanted: [string, number][] = [
    ["GATEWAY_PORT", gatewayPort],
    ["INGEST_PORT", ingestPort],
    ["INGEST_HTTP_PORT", ingestHttpPort],
    ["UPSTREAM_PORT", upstreamPort],
    ...Array.from({ length: TRACKING_NODES }, (_, n): [string, number] => [
      n === 0 ? "TRACKING_PORT" : `TRACKING_PORT (+${n})`,
      trackingPort + n,
    ]),
  ];
  // Two settings on one port is the configuration's own error: said whatever else is running.
  const seen = new Map<number, string>();
  for (const [name, port] of wanted) {
    const other = seen.get(port);
    if (other) fail(`${name} and ${other} are both ${port}: give each its own port`);
    seen.set(port, name);
  }
  for (const [name, port] of wanted) {
    if (!(await canListen(port)))
      fail(
        `${name} ${port} is taken on 127.0.0.1 (another demo or tier running?): stop it, or set ${name.split(" ")[0]} to a free port`,
      );
  }
}

function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(2);
}

let stopping = false;
let city: { stop(): Promise<void> } | undefined;
let orders: Awaited<ReturnType<typeof startDemoOrders>> | undefined;
async function stop(code: number): Promise<never> {
  stopping = true;
  orders?.stop();
  await city?.stop();
  await supervisor.stopAll();
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

let redisUrl = readOptionalString(env, "REDIS_URL");
if (!redisUrl && !readOptionalString(env, "REDIS_CLUSTER_NODES")) {
  const port = await ephemeralPort();
  supervisor.spawn(
    "redis",
    [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    {},
  );
  redisUrl = `redis://127.0.0.1:${port}`;
  await waitForRedis(redisUrl);
}

// Loopback only, whatever the caller's BIND_HOST: the demo prints tokens it signs.
const tierEnv = {
  BIND_HOST: "127.0.0.1",
  JWT_SECRET: jwtSecret,
  ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  INGEST_PORT: String(ingestPort),
  INGEST_HTTP_PORT: String(ingestHttpPort),
  ORDER_SERVICE_URL: `http://127.0.0.1:${upstreamPort}`,
  SEARCH_SERVICE_URL: `http://127.0.0.1:${upstreamPort}`,
};
supervisor.spawn("upstream", [process.execPath, join(import.meta.dir, "upstream", "main.ts")], {
  BIND_HOST: "127.0.0.1",
  UPSTREAM_PORT: String(upstreamPort),
});
supervisor.spawn("gateway", [process.execPath, join(import.meta.dir, "..", "gateway", "main.ts")], {
  ...tierEnv,
  GATEWAY_PORT: String(gatewayPort),
});
supervisor.spawn(
  "ingest",
  [process.execPath, join(import.meta.dir, "..", "location-ingest", "main.ts")],
  // Riders leaving the restaurant with the food make the order PICKED_UP.
  { ...tierEnv, GEOFENCE_AUTO_STATUS: "true" },
);
for (let n = 0; n < TRACKING_NODES; n++) {
  const port = trackingPort + n;
  supervisor.spawn(
    `tracking-${n + 1}`,
    [process.execPath, join(import.meta.dir, "..", "tracking", "main.ts")],
    {
      ...tierEnv,
      TRACKING_PORT: String(port),
      TRACKING_NODE_ID: `t${n + 1}`,
      TRACKING_PUBLIC_URL: `ws://127.0.0.1:${port}`,
    },
  );
}
const readiness = [
  waitForHttp("ingest", `http://127.0.0.1:${ingestHttpPort}/readyz`),
  waitForHttp("gateway", `http://127.0.0.1:${gatewayPort}/readyz`),
  ...Array.from({ length: TRACKING_NODES }, (_, n) =>
    waitForHttp(`tracking-${n + 1}`, `http://127.0.0.1:${trackingPort + n}/readyz`),
  ),
];
await Promise.all(readiness).catch((error: unknown) => {
  logger.error({ err: error, logs: supervisor.logDir }, "demo could not start");
  return stop(1);
});

city = await startSimulatedCity({
  ingestUrl: `http://127.0.0.1:${ingestPort}`,
  jwtSecret,
  riders,
  logger,
  onOffer: (rider, riderToken, offer) =>
    void orders
      ?.handleOffer(rider, riderToken, offer)
      .catch((error: unknown) =>
        logger.warn({ err: error }, "demo rider could not answer an offer"),
      ),
});
// Let every rider send a first ping, so the first order finds candidates.
await Bun.sleep(1_500);
orders = await startDemoOrders({
  gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
  jwtSecret,
  everyMs: 3_000,
  logger,
});

const riderToken = await mintToken(jwtSecret, { sub: "rider-try", role: "rider", city: "london" });
const firstOrder = orders.firstOrder;
const customerToken = await mintToken(jwtSecret, { sub: "demo-customer-1", role: "customer" });
const opsToken = await mintToken(jwtSecret, { sub: "demo-ops", role: "ops" });
console.log(`
delivery-edge demo is running (Ctrl-C stops everything)

  Live map: http://127.0.0.1:${gatewayPort}/#token=${opsToken}
  The first order as its customer sees it:
            http://127.0.0.1:${gatewayPort}/#token=${customerToken}&order=${firstOrder?.id}
  API reference (its calls run as that customer):
            http://127.0.0.1:${gatewayPort}/docs#token=${customerToken}

  Redis             ${redisUrl ?? env.REDIS_CLUSTER_NODES}
  gateway (HTTP)    http://127.0.0.1:${gatewayPort}   orders, search, dispatch, status
  upstream stand-in http://127.0.0.1:${upstreamPort}   fixture restaurants
  ingest (gRPC)     http://127.0.0.1:${ingestPort}   LocationIngestService over h2c
  ingest (HTTP/1.1) http://127.0.0.1:${ingestHttpPort}  /metrics /readyz, Connect JSON
  tracking nodes    ws://127.0.0.1:${trackingPort} .. ${trackingPort + TRACKING_NODES - 1}  (t1..t${TRACKING_NODES}, one hash ring)
  simulated riders  ${riders} in london, paris, berlin
  logs              ${supervisor.logDir}
  JWT_SECRET        ${readOptionalString(env, "JWT_SECRET") ? "from your environment" : `kept in ${shownPath(secretFile)}`}

Mint a token for any role (it signs with the same secret):
  ./edge token -- --role customer --sub me
  ./edge token -- --role rider --sub r1 --city london

Try a ping by hand:
  curl -s -X POST http://127.0.0.1:${ingestHttpPort}/delivery.tracking.v1.LocationIngestService/SendPing \\
    -H 'content-type: application/json' -H 'authorization: Bearer ${riderToken}' \\
    -d '{"ping":{"lat":51.5074,"lng":-0.1278,"accuracyM":5,"recordedAtMs":"'$(date +%s000)'","seq":"'$(date +%s000)'"}}'

A customer places an order every 3 s; the dispatcher offers it to the nearest
free rider, whose app accepts it and drives to the restaurant; the kitchen marks
it READY, leaving the restaurant makes it PICKED_UP (the ingest's geofence), and
the rider marks it DELIVERED at the door.
Follow the first one (${firstOrder?.id}):
  curl -s -H 'authorization: Bearer ${customerToken}' http://127.0.0.1:${gatewayPort}/v1/orders/${firstOrder?.id}/status
  curl -s -H 'authorization: Bearer ${customerToken}' http://127.0.0.1:${gatewayPort}/v1/orders/${firstOrder?.id}/track
  then open the WebSocket URL it names with the token in an Authorization: Bearer
  header (apps), or as the subprotocol bearer.<token> beside tracking.v2.json
  (browsers). ?access_token= works too, for clients that can do neither, but a URL
  carrying a token ends up in every log and history that records URLs.
`);

const watchdog = setInterval(() => {
  const crashed = supervisor.exited();
  if (crashed.length > 0 && !stopping) {
    logger.error(
      { crashed: crashed.map((c) => c.name), logs: supervisor.logDir },
      "a demo process exited",
    );
    void stop(1);
  }
}, 1_000);
watchdog.unref();

async function waitForRedis(url: string): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 100,
  });
  // Refusals are expected until the server is up; the deadline below reports failure.
  client.on("error", () => undefined);
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if (
      await client.ping().then(
        () => true,
        () => false,
      )
    ) {
      client.disconnect();
      return;
    }
    await Bun.sleep(50);
  }
  client.disconnect();
  throw new Error(`redis-server did not answer at ${url}`);
}
