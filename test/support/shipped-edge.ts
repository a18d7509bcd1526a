import { afterAll, beforeAll } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { cleanUpAll } from "./clean-up";
import { freePort } from "./free-port";
import { startTestGateway, type TestGateway } from "./gateway";
import { startTestIngest, type TestIngest } from "./ingest";
import { type RedisServer, startRedis } from "./redis-server";
import { type ShippedNginx, startShippedNginx } from "./shipped-nginx";
import { makeSelfSignedCertificate, type TestCertificate } from "./tls-cert";
import { PROCESS_NODE_TTL_MS, spawnTrackingProcess, type TrackingProcess } from "./tracking";
import { startTestUpstream, type TestUpstream } from "./upstream";
import { waitUntil } from "./wait";

/** The node ids docker/nginx.conf routes (its map and upstream names). */
export const SHIPPED_NODE_IDS = ["t1", "t2", "t3"] as const;
export type ShippedNodeId = (typeof SHIPPED_NODE_IDS)[number];

export interface ShippedEdge {
  readonly redis: RedisServer;
  readonly db: Redis;
  readonly certificate: TestCertificate;
  readonly nginx: ShippedNginx;
  readonly gateways: readonly TestGateway[];
  readonly ingest: TestIngest;
  readonly tracking: Map<ShippedNodeId, TrackingProcess>;
  /** Starts node `id` again on its old port (after a drain or a crash). */
  restartTracking(id: ShippedNodeId): Promise<TrackingProcess>;
  /** Resolves once every gateway's ring holds exactly `ids` and one more tick has passed. */
  ringsHold(ids: readonly string[]): Promise<void>;
}

const TICK_MS = 100;

/**
 * For a test file: the production shape on loopback behind Debian's nginx
 * running docker/nginx.conf (addresses changed only) over TLS with a fresh
 * self-signed certificate: Redis, tracking nodes t1-t3 as their own
 * processes (so one can be killed), two gateways, an ingest and the
 * stand-in upstream. Each node's public URL is the edge's /tracking/<id>.
 */
export function useShippedEdge(): ShippedEdge {
  const fixture = { tracking: new Map() } as {
    -readonly [K in keyof ShippedEdge]: ShippedEdge[K];
  };
  let dir = "";
  let upstream: TestUpstream | undefined;
  const ports = new Map<ShippedNodeId, number>();
  let trackingEnv: (id: ShippedNodeId) => Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "edge-balancer-"));
    // nginx's workers (www-data) must reach their temp directory.
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, "tls"));
    fixture.certificate = await makeSelfSignedCertificate(join(dir, "tls"));
    fixture.redis = await startRedis();
    fixture.db = new Redis(fixture.redis.url);
    const [httpsPort, httpPort] = [await freePort(), await freePort()];
    const edgeWs = `wss://127.0.0.1:${httpsPort}`;
    trackingEnv = (id) => ({
      REDIS_URL: fixture.redis.url,
      TRACKING_NODE_ID: id,
      TRACKING_PUBLIC_URL: `${edgeWs}/tracking/${id}`,
      TRACKING_RING_REFRESH_MS: String(TICK_MS),
      LOG_LEVEL: "info",
    });
    upstream = startTestUpstream();
    const started = await Promise.all(
      SHIPPED_NODE_IDS.map((id) => spawnTrackingProcess(trackingEnv(id))),
    );
    SHIPPED_NODE_IDS.forEach((id, index) => {
      const node = started[index] as TrackingProcess;
      fixture.tracking.set(id, node);
      ports.set(id, Number(new URL(node.httpUrl).port));
    });
    const gatewayEnv = {
      REDIS_URL: fixture.redis.url,
      ORDER_SERVICE_URL: upstream.url,
      SEARCH_SERVICE_URL: upstream.url,
      RATE_LIMIT_REQUESTS: "100000",
      TRACKING_RING_REFRESH_MS: String(TICK_MS),
      // The nodes are processes (a kill -9 must age out of the gateways' rings): their TTL.
      TRACKING_NODE_TTL_MS: PROCESS_NODE_TTL_MS,
      // As docker/compose.yaml sets it: the balancer appends the client's address.
      GATEWAY_CLIENT_ADDRESS_HEADER: "X-Forwarded-For",
    };
    fixture.gateways = [await startTestGateway(gatewayEnv), await startTestGateway(gatewayEnv)];
    fixture.ingest = await startTestIngest({
      REDIS_URL: fixture.redis.url,
      // As docker/compose.yaml sets it: the balancer appends the client's address.
      INGEST_CLIENT_ADDRESS_HEADER: "X-Forwarded-For",
    });
    const local = (url: string) => `127.0.0.1:${new URL(url).port}`;
    const [gateway1, gateway2] = fixture.gateways.map((gateway) => local(gateway.url));
    fixture.nginx = await startShippedNginx({
      dir,
      certificate: fixture.certificate,
      httpsPort,
      httpPort,
      upstreams: {
        "gateway-1:8080": gateway1 as string,
        "gateway-2:8080": gateway2 as string,
        "ingest-1:8081": local(fixture.ingest.grpcUrl),
        "ingest-2:8081": local(fixture.ingest.grpcUrl),
        "ingest-1:8082": local(fixture.ingest.httpUrl),
        "ingest-2:8082": local(fixture.ingest.httpUrl),
        ...Object.fromEntries(
          SHIPPED_NODE_IDS.map((id, index) => [
            `tracking-${index + 1}:8090`,
            `127.0.0.1:${ports.get(id)}`,
          ]),
        ),
      },
    });
    await fixture.ringsHold(SHIPPED_NODE_IDS);
  }, 30_000);

  fixture.restartTracking = async (id) => {
    const node = await spawnTrackingProcess({
      ...trackingEnv(id),
      TRACKING_PORT: String(ports.get(id)),
    });
    fixture.tracking.set(id, node);
    return node;
  };

  fixture.ringsHold = async (ids) => {
    const wanted = [...ids].sort().join(",");
    for (const gateway of fixture.gateways)
      await waitUntil(
        () =>
          gateway.app.ring
            .nodes()
            .map((node) => node.id)
            .join(",") === wanted,
        10_000,
        `the gateway's ring holding ${wanted}`,
      );
    await Bun.sleep(2 * TICK_MS);
  };

  afterAll(() =>
    cleanUpAll(
      () => fixture.nginx?.stop(),
      ...[...fixture.tracking.values()].map((node) => () => node.kill()),
      ...(fixture.gateways ?? []).map((gateway) => () => gateway.stop()),
      () => fixture.ingest?.stop(),
      () => upstream?.stop(),
      () => fixture.db?.disconnect(),
      () => fixture.redis?.stop(),
      () => dir && rmSync(dir, { recursive: true, force: true }),
    ),
  );
  return fixture;
}
