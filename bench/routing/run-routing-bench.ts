import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { TRACKING_SUBPROTOCOLS } from "../../core/protocol/tracking-protocol";
import { freePort } from "../../test/support/free-port";
import { seedOrder } from "../../test/support/orders";
import { startRedis } from "../../test/support/redis-server";
import { startShippedNginx } from "../../test/support/shipped-nginx";
import { makeSelfSignedCertificate } from "../../test/support/tls-cert";
import { TEST_JWT_SECRET, testToken } from "../../test/support/tokens";
import { spawnTrackingProcess, type TrackingProcess } from "../../test/support/tracking";
import { waitUntil } from "../../test/support/wait";
import { Reservoir } from "../support/percentiles";
import { cpuSeconds } from "../support/process-stats";

export interface RoutingBenchOptions {
  /** Upgrades per way in, over all rounds. */
  upgrades: number;
  /** Upgrades in flight at once. */
  concurrency: number;
  progress: (line: string) => void;
}

/** The three ways a customer's socket reaches the owning node. */
export const WAYS = {
  node: "straight to the owning node (ws://, no balancer): the baseline",
  named: "balancer, node-named URL (wss:// /tracking/<id>/…): TLS + proxy, no lookup",
  ring: "balancer, public route (wss:// /v1/orders/{id}/track): TLS + ring lookup + proxy",
} as const;
export type Way = keyof typeof WAYS;

export interface WayResult {
  upgrades: number;
  failures: number;
  /** Open → first frame (the status) on the owner, ms, with `concurrency` in flight. */
  p50Ms: number;
  p99Ms: number;
  /** The same, one upgrade at a time, the three ways taking turns order by order. */
  aloneP50Ms: number;
  aloneP99Ms: number;
  upgradesPerSecond: number;
  /** CPU per upgrade, µs: nginx's workers, the three tracking nodes. */
  nginxCpuMicros: number;
  trackingCpuMicros: number;
}

export interface RoutingBenchResult {
  ways: Record<Way, WayResult>;
  /** GET /ring/owner/{id} alone, on one node over a kept-alive connection. */
  lookup: { requests: number; microsPerRequest: number; nodeCpuMicros: number };
}

const NODE_IDS = ["t1", "t2", "t3"] as const;
const ROUNDS = 10;
const ALONE = 300;

const newTotal = () => ({
  latency: new Reservoir(),
  alone: new Reservoir(),
  failures: 0,
  count: 0,
  ms: 0,
  nginxCpu: 0,
  trackingCpu: 0,
});

/** nginx's worker processes (children of the master we started). */
function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}

/**
 * What routing by the ring costs per WebSocket upgrade: Debian's nginx on
 * docker/nginx.conf (addresses changed only) in front of three tracking
 * node processes, the same orders opened straight on their owner, through
 * the node-named URL and through the public route (auth_request to the
 * ring), in alternating rounds so machine noise hits all three alike.
 */
export async function runRoutingBench(options: RoutingBenchOptions): Promise<RoutingBenchResult> {
  const { upgrades, concurrency, progress } = options;
  const dir = mkdtempSync(join(tmpdir(), "bench-routing-"));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, "tls"));
  const redis = await startRedis();
  const db = new Redis(redis.url);
  const nodes = new Map<string, TrackingProcess>();
  let nginx: Awaited<ReturnType<typeof startShippedNginx>> | undefined;
  try {
    const certificate = await makeSelfSignedCertificate(join(dir, "tls"));
    const [httpsPort, httpPort] = [await freePort(), await freePort()];
    for (const id of NODE_IDS)
      nodes.set(
        id,
        await spawnTrackingProcess({
          REDIS_URL: redis.url,
          JWT_SECRET: TEST_JWT_SECRET,
          TRACKING_NODE_ID: id,
          TRACKING_PUBLIC_URL: `wss://127.0.0.1:${httpsPort}/tracking/${id}`,
          TRACKING_MAX_SOCKETS_PER_USER: "100000",
          TRACKING_MAX_WATCH_ATTEMPTS_PER_USER: "1000000",
          // Each upgrade subscribes and each close unsubscribes, whichever way ran before.
          TRACKING_UNSUBSCRIBE_AFTER_MS: "0",
          LOG_LEVEL: "warn",
        }),
      );
    const local = (id: string) => `127.0.0.1:${new URL(nodes.get(id)?.httpUrl ?? "").port}`;
    // Nothing listens on the discard port: this bench sends no gateway or ingest traffic.
    const unused = "127.0.0.1:9";
    nginx = await startShippedNginx({
      dir,
      certificate,
      httpsPort,
      httpPort,
      upstreams: {
        "gateway-1:8080": unused,
        "gateway-2:8080": unused,
        "ingest-1:8081": unused,
        "ingest-2:8081": unused,
        "ingest-1:8082": unused,
        "ingest-2:8082": unused,
        "tracking-1:8090": local("t1"),
        "tracking-2:8090": local("t2"),
        "tracking-3:8090": local("t3"),
      },
    });
    const nginxPid = Number(readFileSync(join(dir, "nginx.pid"), "utf8"));
    const workers = childPids(nginxPid);
    await waitUntil(
      async () => {
        const answer = await fetch(`${nodes.get("t1")?.httpUrl}/ring/owner/x`);
        return answer.ok && (await answer.json()).node !== undefined;
      },
      10_000,
      "the ring",
    );
    // Let every ring read the same tick.
    await Bun.sleep(2_500);

    const perRound = Math.ceil(upgrades / ROUNDS);
    const orders: { id: string; token: string; owner: string }[] = [];
    for (let i = 0; i < perRound; i++) {
      const id = `bench-route-${i}`;
      await seedOrder(db, { orderId: id, customerId: `c-${i}`, riderId: `r-${i}` });
      const owner = (await (
        await fetch(`${nodes.get("t1")?.httpUrl}/ring/owner/${id}`)
      ).json()) as { node: string };
      orders.push({ id, token: await testToken(`c-${i}`, "customer"), owner: owner.node });
    }
    progress(`routing: ${orders.length} orders, ${ROUNDS} rounds per way`);

    const urlFor = (way: Way, order: (typeof orders)[number]) =>
      way === "node"
        ? `ws://${local(order.owner)}/v1/orders/${order.id}/track`
        : way === "named"
          ? `${nginx?.wsUrl}/tracking/${order.owner}/v1/orders/${order.id}/track`
          : `${nginx?.wsUrl}/v1/orders/${order.id}/track`;

    function upgrade(url: string, token: string): Promise<number> {
      const started = performance.now();
      return new Promise((resolve, reject) => {
        const socket = new WebSocket(url, {
          protocols: [TRACKING_SUBPROTOCOLS.json],
          headers: { authorization: `Bearer ${token}` },
          tls: { ca: certificate.pem },
        } as unknown as string[]);
        socket.onmessage = (event) => {
          const frame = JSON.parse(String(event.data)) as { moved?: unknown };
          socket.close();
          if (frame.moved) reject(new Error(`moved from ${url}`));
          else resolve(performance.now() - started);
        };
        socket.onerror = () => reject(new Error(`no socket at ${url}`));
      });
    }

    const totals = Object.fromEntries(
      (Object.keys(WAYS) as Way[]).map((way) => [way, newTotal()]),
    ) as Record<Way, ReturnType<typeof newTotal>>;
    const cpu = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const trackingPids = [...nodes.values()].map((node) => node.pid);

    for (let round = 0; round < ROUNDS; round++) {
      const ways = (Object.keys(WAYS) as Way[]).sort(() => Math.random() - 0.5);
      for (const way of ways) {
        const total = totals[way];
        const nginxBefore = cpu(workers);
        const trackingBefore = cpu(trackingPids);
        const started = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < orders.length) {
              const order = orders[next++] as (typeof orders)[number];
              try {
                total.latency.add(await upgrade(urlFor(way, order), order.token));
                total.count += 1;
              } catch {
                total.failures += 1;
              }
            }
          }),
        );
        total.ms += performance.now() - started;
        total.nginxCpu += cpu(workers) - nginxBefore;
        total.trackingCpu += cpu(trackingPids) - trackingBefore;
        // Closed sockets release their quota and subscriptions before the next block.
        await Bun.sleep(300);
      }
      progress(`routing: round ${round + 1}/${ROUNDS} done`);
    }

    // Latency without queueing: one upgrade at a time, the three ways in turn on each order.
    for (const order of orders.slice(0, ALONE)) {
      for (const way of (Object.keys(WAYS) as Way[]).sort(() => Math.random() - 0.5)) {
        const total = totals[way];
        try {
          total.alone.add(await upgrade(urlFor(way, order), order.token));
        } catch {
          total.failures += 1;
        }
      }
    }
    progress(`routing: ${ALONE} upgrades one at a time per way done`);

    // The lookup alone: sequential, one kept-alive connection to one node.
    const lookups = 5_000;
    const node = nodes.get("t1") as TrackingProcess;
    const nodeBefore = cpuSeconds(node.pid);
    const lookupStarted = performance.now();
    for (let i = 0; i < lookups; i++)
      await (
        await fetch(`${node.httpUrl}/ring/owner/bench-route-${i % orders.length}`)
      ).arrayBuffer();
    const lookupMs = performance.now() - lookupStarted;
    const lookupCpu = cpuSeconds(node.pid) - nodeBefore;

    const ways = Object.fromEntries(
      (Object.keys(WAYS) as Way[]).map((way) => {
        const total = totals[way];
        return [
          way,
          {
            upgrades: total.count,
            failures: total.failures,
            p50Ms: total.latency.percentile(50),
            p99Ms: total.latency.percentile(99),
            aloneP50Ms: total.alone.percentile(50),
            aloneP99Ms: total.alone.percentile(99),
            upgradesPerSecond: total.count / (total.ms / 1000),
            nginxCpuMicros: (total.nginxCpu * 1e6) / Math.max(1, total.count),
            trackingCpuMicros: (total.trackingCpu * 1e6) / Math.max(1, total.count),
          },
        ];
      }),
    ) as Record<Way, WayResult>;
    return {
      ways,
      lookup: {
        requests: lookups,
        microsPerRequest: (lookupMs * 1000) / lookups,
        nodeCpuMicros: (lookupCpu * 1e6) / lookups,
      },
    };
  } finally {
    await nginx?.stop();
    for (const node of nodes.values()) await node.kill();
    db.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
