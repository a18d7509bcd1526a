import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Redis } from "ioredis";
import { mintToken } from "../../core/auth/mint-token";
import { freePort } from "../../test/support/free-port";
import { startRedis } from "../../test/support/redis-server";
import { lineReader, nodeExecutable, spawnDriven, waitForOk } from "../support/child";
import { cpuMeter, residentBytes } from "../support/process-stats";
import { seedBenchOrders } from "../support/seed-orders";

export interface FanoutBenchOptions {
  orders: number;
  perOrder: number;
  seconds: number;
  /** Events/s for the latency load point. */
  rate: number;
  /** Events/s offered for the throughput load point (more than any server here keeps up with). */
  maxRate: number;
  /** Each server is measured this many times, the servers taking turns. */
  rounds: number;
  /** Seconds of each load point before its window opens (default 3). */
  warmupSeconds?: number;
  progress: (line: string) => void;
}

/** The servers measured, each on the same sockets and events. */
export const SERVERS = {
  node: "tracking node (tracking/main.ts)",
  rawSend: "raw: bare Bun.serve, per-socket ws.send",
  rawPublish: "raw: bare Bun.serve, server.publish to a topic per order",
  peer: "peer: Socket.IO 4 + @socket.io/redis-adapter on Node",
} as const;
export type ServerName = keyof typeof SERVERS;
export type LoadPoint = "rate" | "max";

interface WatcherResult {
  sockets: number;
  framesPerSecond: number;
  lagMs: { p50: number; p99: number; p999: number };
  closedEarly: number;
}

export interface FanoutRun extends WatcherResult {
  server: ServerName;
  load: LoadPoint;
  round: number;
  /** Events/s the publisher got into Redis during the window (Redis's own PUBLISH count). */
  eventsPerSecond: number;
  /** Share of one core per process over the window. */
  cpu: Record<string, number>;
  /** The server's CPU per frame delivered, µs. */
  serverMicrosPerFrame: number;
  /** Tracking node only: positions it replaced by a newer one for a congested socket, per second. */
  conflatedPerSecond?: number;
}

export interface FanoutBenchResult {
  options: Omit<FanoutBenchOptions, "progress">;
  /** Tracking node memory per idle socket, bytes. */
  bytesPerSocket: number;
  runs: FanoutRun[];
}

const ROOT = join(import.meta.dir, "..", "..");
const HERE = import.meta.dir;
const ORDER_PREFIX = "bench-order-";
const RIDER_PREFIX = "bench-rider-";

/** Socket.IO runs on Node: its server file is built from TypeScript for Node once per bench. */
async function buildPeerServer(): Promise<string> {
  const outdir = join(ROOT, ".tmp", "bench-fanout");
  const built = await Bun.build({
    entrypoints: [join(HERE, "socketio-peer-server.ts")],
    target: "node",
    format: "esm",
    packages: "external",
    outdir,
  });
  if (!built.success) throw new AggregateError(built.logs, "socket.io peer build failed");
  return join(outdir, "socketio-peer-server.js");
}

/** The tracking node's count of positions conflated so far (its /metrics). */
async function conflatedSoFar(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^edge_tracking_frames_conflated_total (\S+)$/m.exec(text)?.[1] ?? 0);
}

async function publishCalls(db: Redis): Promise<number> {
  const stats = await db.info("commandstats");
  return Number(/cmdstat_publish:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/**
 * The fan-out benchmark. Events go straight into Redis from a publisher
 * process of their own (nothing else shares the cores); each server in turn
 * holds `orders × perOrder` sockets of a watcher process and delivers the
 * same events to them: the tracking node, bare Bun.serve forwarding the same
 * Redis messages (two ways) and Socket.IO with its Redis adapter. Each server
 * is measured at `rate` events/s (latency) and at `maxRate` (throughput),
 * `rounds` times, the servers taking turns (in reverse order every other
 * round) so a slow moment of a shared machine falls on all of them.
 */
export async function runFanoutBench(options: FanoutBenchOptions): Promise<FanoutBenchResult> {
  const { orders, perOrder, seconds, rate, maxRate, rounds, progress } = options;
  const warmupSeconds = options.warmupSeconds ?? 3;
  const sockets = orders * perOrder;
  const redis = await startRedis();
  const db = new Redis(redis.url);
  const secret = randomBytes(32).toString("hex");
  const children: { kill(signal?: number | NodeJS.Signals): void }[] = [];
  const bun = process.execPath;
  try {
    // A server that falls behind at maxRate lags; Redis must not cut it off for that.
    await db.config("SET", "client-output-buffer-limit", "pubsub 0 0 0");
    await seedBenchOrders(redis.url, orders, {
      orderPrefix: ORDER_PREFIX,
      riderPrefix: RIDER_PREFIX,
    });
    const token = await mintToken(secret, { sub: "bench-dispatcher", role: "dispatcher" });
    const peerServer = await buildPeerServer();
    const runs: FanoutRun[] = [];
    let bytesPerSocket = 0;

    /** Starts a server; resolves with its process and port once it serves. */
    async function startServer(name: ServerName) {
      if (name === "node") {
        const port = await freePort();
        const child = spawnDriven([bun, join(ROOT, "tracking", "main.ts")], {
          REDIS_URL: redis.url,
          JWT_SECRET: secret,
          TRACKING_PORT: String(port),
          TRACKING_NODE_ID: "bench-t1",
          TRACKING_PUBLIC_URL: `ws://127.0.0.1:${port}`,
          // The load generator watches every order as one dispatcher.
          TRACKING_MAX_SOCKETS_PER_STAFF: "1000000",
          TRACKING_MAX_WATCH_ATTEMPTS_PER_STAFF: "10000000",
        });
        children.push(child);
        await waitForOk(`http://127.0.0.1:${port}/readyz`);
        return { child, port };
      }
      const command =
        name === "peer"
          ? [nodeExecutable(), peerServer, "--redis", redis.url]
          : [
              bun,
              join(HERE, "raw-forward-server.ts"),
              ...["--redis", redis.url, "--fanout", name === "rawSend" ? "send" : "publish"],
            ];
      const child = spawnDriven(command);
      children.push(child);
      const line = await lineReader(child).until((text) => text.startsWith("{"));
      return { child, port: (JSON.parse(line) as { port: number }).port };
    }

    async function measure(name: ServerName, round: number): Promise<void> {
      progress(`fan-out round ${round}: ${SERVERS[name]}, ${sockets} sockets`);
      const server = await startServer(name);
      const baseRss = residentBytes(server.child.pid);
      const watchers = spawnDriven([
        bun,
        join(HERE, "load-watchers.ts"),
        ...["--url", `ws://127.0.0.1:${server.port}`, "--token", token],
        ...["--protocol", name === "peer" ? "socketio" : "edge", "--order-prefix", ORDER_PREFIX],
        ...["--orders", String(orders), "--per-order", String(perOrder)],
      ]);
      children.push(watchers);
      const lines = lineReader(watchers);
      await lines.until((line) => line === "ready");
      if (name === "node" && bytesPerSocket === 0)
        bytesPerSocket = (residentBytes(server.child.pid) - baseRss) / sockets;
      for (const [load, eventsPerSecond] of [
        ["rate", rate],
        ["max", maxRate],
      ] as const) {
        const publisher = spawnDriven([
          bun,
          join(HERE, "publish-events.ts"),
          ...["--redis", redis.url, "--to", name === "peer" ? "socketio" : "channels"],
          ...["--orders", String(orders), "--rate", String(eventsPerSecond)],
          ...["--order-prefix", ORDER_PREFIX, "--rider-prefix", RIDER_PREFIX],
        ]);
        children.push(publisher);
        await lineReader(publisher).until((line) => line === "publishing");
        watchers.send(`measure ${warmupSeconds} ${seconds}`);
        await lines.until((line) => line === "measuring");
        const meter = cpuMeter({
          server: server.child.pid,
          watchers: watchers.pid,
          publisher: publisher.pid,
          redis: redis.pid,
        });
        const publishedBefore = await publishCalls(db);
        const conflatedBefore = name === "node" ? await conflatedSoFar(server.port) : 0;
        const startedAt = performance.now();
        const result = JSON.parse(
          await lines.until((line) => line.startsWith("{")),
        ) as WatcherResult;
        const cpu = meter.stop();
        const published = (await publishCalls(db)) - publishedBefore;
        const conflated =
          name === "node" ? (await conflatedSoFar(server.port)) - conflatedBefore : undefined;
        const elapsed = (performance.now() - startedAt) / 1000;
        publisher.kill();
        await publisher.exited;
        const run: FanoutRun = {
          ...result,
          server: name,
          load,
          round,
          eventsPerSecond: published / elapsed,
          cpu,
          serverMicrosPerFrame: ((cpu.server ?? 0) / result.framesPerSecond) * 1e6,
          ...(conflated === undefined ? {} : { conflatedPerSecond: conflated / elapsed }),
        };
        runs.push(run);
        // A window with no frame has no lag percentiles (null in the watchers' JSON).
        const shown = (n: number | null, digits: number) =>
          Number.isFinite(n) ? (n as number).toFixed(digits) : "n/a";
        progress(
          `  ${load === "rate" ? `${rate} events/s` : `offered ${maxRate} events/s`}: ${Math.round(run.framesPerSecond)} frames/s, p99 ${shown(run.lagMs.p99, 1)} ms, server ${shown(run.serverMicrosPerFrame, 2)} µs/frame`,
        );
      }
      watchers.kill();
      server.child.kill("SIGKILL");
      await Promise.all([watchers.exited, server.child.exited]);
    }

    // Each round reverses the last one's order, so no server always runs after the same one.
    const order = Object.keys(SERVERS) as ServerName[];
    for (let round = 1; round <= rounds; round++)
      for (const name of round % 2 ? order : order.toReversed()) await measure(name, round);
    return {
      options: { orders, perOrder, seconds, rate, maxRate, rounds, warmupSeconds },
      bytesPerSocket,
      runs,
    };
  } finally {
    for (const child of children) child.kill("SIGKILL");
    db.disconnect();
    await redis.stop();
  }
}
