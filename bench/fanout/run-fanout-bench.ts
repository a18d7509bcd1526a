import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { mintToken } from "../../core/auth/mint-token";
import { freePort, startRedis } from "../../test/support/redis-server";
import { lineReader, spawnBun, waitForOk } from "../support/child";
import { cpuMeter, residentBytes } from "../support/process-stats";
import { seedBenchOrders } from "../support/seed-orders";

export interface FanoutBenchOptions {
  orders: number;
  perOrder: number;
  seconds: number;
  /** Pings/s across all riders for the latency run. */
  rate: number;
  progress: (line: string) => void;
}

interface WatcherResult {
  sockets: number;
  framesPerSecond: number;
  lagMs: { p50: number; p99: number; p999: number };
  closedEarly: number;
}

export interface FanoutRun extends WatcherResult {
  cpu: Record<string, number>;
}

export interface FanoutBenchResult {
  options: Omit<FanoutBenchOptions, "progress">;
  /** Tracking node memory per idle socket, bytes. */
  bytesPerSocket: number;
  latency: FanoutRun;
  throughput: FanoutRun;
  raw: FanoutRun;
  ratio: number;
}

const ROOT = join(import.meta.dir, "..", "..");
const HERE = import.meta.dir;
const WATCHER_WARMUP_S = 5;
const ORDER_PREFIX = "bench-order-";
const RIDER_PREFIX = "bench-rider-";

/**
 * The fan-out benchmark: riders stream pings through a real ingest to one
 * tracking node watched by `orders × perOrder` sockets in a separate
 * process; in the same run, bare Bun.serve sends the same frames to as
 * many sockets (the raw ceiling).
 */
export async function runFanoutBench(options: FanoutBenchOptions): Promise<FanoutBenchResult> {
  const { orders, perOrder, seconds, rate, progress } = options;
  const redis = await startRedis();
  const secret = randomBytes(32).toString("hex");
  const children: { kill(signal?: number | NodeJS.Signals): void }[] = [];
  try {
    await seedBenchOrders(redis.url, orders, {
      orderPrefix: ORDER_PREFIX,
      riderPrefix: RIDER_PREFIX,
    });
    const [trackingPort, grpcPort, ingestHttpPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const env = { REDIS_URL: redis.url, JWT_SECRET: secret };
    const tracking = spawnBun(join(ROOT, "tracking", "main.ts"), [], {
      ...env,
      TRACKING_PORT: String(trackingPort),
      TRACKING_NODE_ID: "bench-t1",
      TRACKING_PUBLIC_URL: `ws://127.0.0.1:${trackingPort}`,
      // The load generator watches every order as one dispatcher.
      TRACKING_MAX_SOCKETS_PER_STAFF: "1000000",
    });
    const ingest = spawnBun(join(ROOT, "location-ingest", "main.ts"), [], {
      ...env,
      INGEST_PORT: String(grpcPort),
      INGEST_HTTP_PORT: String(ingestHttpPort),
      // The load process carries 100 riders per connection (a phone holds one).
      INGEST_MAX_STREAMS_PER_CONNECTION: "100",
    });
    children.push(tracking, ingest);
    await waitForOk(`http://127.0.0.1:${trackingPort}/readyz`);
    await waitForOk(`http://127.0.0.1:${ingestHttpPort}/readyz`);
    const token = await mintToken(secret, { sub: "bench-dispatcher", role: "dispatcher" });
    const pids = { tracking: tracking.pid, ingest: ingest.pid, redis: redis.pid };
    const baseRss = residentBytes(tracking.pid);
    let bytesPerSocket = 0;

    const run = async (label: string, riderRate: number): Promise<FanoutRun> => {
      progress(`fan-out: ${orders * perOrder} sockets, riders ${label}, ${seconds} s`);
      const watchers = spawnBun(join(HERE, "load-watchers.ts"), [
        ...[
          "--url",
          `ws://127.0.0.1:${trackingPort}`,
          "--orders",
          String(orders),
          "--per-order",
          String(perOrder),
        ],
        ...[
          "--order-prefix",
          ORDER_PREFIX,
          "--token",
          token,
          "--seconds",
          String(seconds),
          "--warmup",
          String(WATCHER_WARMUP_S),
        ],
      ]);
      children.push(watchers);
      const lines = lineReader(watchers);
      await lines.until((line) => line === "ready");
      if (bytesPerSocket === 0)
        bytesPerSocket = (residentBytes(tracking.pid) - baseRss) / (orders * perOrder);
      const riders = spawnBun(join(ROOT, "bench", "ingest", "load-riders.ts"), [
        ...[
          "--url",
          `http://127.0.0.1:${grpcPort}`,
          "--streams",
          String(orders),
          "--rate",
          String(riderRate),
        ],
        ...[
          "--rider-prefix",
          RIDER_PREFIX,
          "--secret",
          secret,
          "--warmup",
          "0",
          "--seconds",
          String(WATCHER_WARMUP_S + seconds + 2),
        ],
      ]);
      children.push(riders);
      await Bun.sleep(WATCHER_WARMUP_S * 1000);
      const meter = cpuMeter({ ...pids, watchers: watchers.pid, riders: riders.pid });
      const result = JSON.parse(await lines.until((line) => line.startsWith("{"))) as WatcherResult;
      const cpu = meter.stop();
      riders.kill();
      await Promise.all([watchers.exited, riders.exited]);
      progress(
        `  ${Math.round(result.framesPerSecond)} frames/s, lag p99 ${result.lagMs.p99.toFixed(1)} ms`,
      );
      return { ...result, cpu };
    };

    const latency = await run(`open loop at ${rate} pings/s`, rate);
    const throughput = await run("closed loop (as fast as acked)", 0);
    tracking.kill("SIGTERM");
    ingest.kill("SIGTERM");
    await Promise.all([tracking.exited, ingest.exited]);

    progress(`raw ceiling: bare Bun.serve, ${orders * perOrder} sockets, ${seconds} s`);
    const rawServer = spawnBun(join(HERE, "raw-publish-server.ts"), ["--port", "0"]);
    children.push(rawServer);
    const { port: rawPort } = JSON.parse(
      await lineReader(rawServer).until((line) => line.startsWith("{")),
    ) as { port: number };
    const watchers = spawnBun(join(HERE, "load-watchers.ts"), [
      ...[
        "--url",
        `ws://127.0.0.1:${rawPort}`,
        "--orders",
        String(orders),
        "--per-order",
        String(perOrder),
      ],
      ...["--order-prefix", ORDER_PREFIX, "--seconds", String(seconds), "--warmup", "1"],
    ]);
    children.push(watchers);
    const lines = lineReader(watchers);
    await lines.until((line) => line === "ready");
    await fetch(`http://127.0.0.1:${rawPort}/blast?seconds=${seconds + 2}`, { method: "POST" });
    await Bun.sleep(1_000);
    const meter = cpuMeter({ server: rawServer.pid, watchers: watchers.pid });
    const rawResult = JSON.parse(
      await lines.until((line) => line.startsWith("{")),
    ) as WatcherResult;
    const raw = { ...rawResult, cpu: meter.stop() };
    progress(`  ${Math.round(raw.framesPerSecond)} frames/s`);
    return {
      options: { orders, perOrder, seconds, rate },
      bytesPerSocket,
      latency,
      throughput,
      raw,
      ratio: throughput.framesPerSecond / raw.framesPerSecond,
    };
  } finally {
    for (const child of children) child.kill("SIGKILL");
    await redis.stop();
  }
}
