import { afterAll, beforeAll } from "bun:test";
import pino, { type Logger } from "pino";
import type { Role } from "../../core/auth/identity";
import { loadGatewayConfig } from "../../gateway/config";
import { type GatewayApp, startGateway } from "../../gateway/gateway-app";
import { cleanUpAll } from "./clean-up";
import { freePort } from "./free-port";
import { type RedisServer, startRedis } from "./redis-server";
import { TEST_JWT_SECRET, testToken } from "./tokens";
import { IN_PROCESS_NODE_TTL_MS } from "./tracking";
import { startTestUpstream, type TestUpstream } from "./upstream";

export interface TestGateway {
  readonly app: GatewayApp;
  readonly url: string;
  /** fetch against the gateway, as `sub` with `role`; a string body is sent as JSON unless a Content-Type says otherwise. */
  call(path: string, init?: RequestInit & { as?: { sub: string; role: Role } }): Promise<Response>;
  stop(): Promise<void>;
}

/** A gateway in this process on a free port (or `env.GATEWAY_PORT`), with the test defaults under `env`. */
export async function startTestGateway(
  env: Record<string, string>,
  logger: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
): Promise<TestGateway> {
  const port = env.GATEWAY_PORT ? Number(env.GATEWAY_PORT) : await freePort();
  const config = loadGatewayConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    GATEWAY_PORT: String(port),
    TRACKING_NODE_TTL_MS: IN_PROCESS_NODE_TTL_MS,
    TRACKING_RING_REFRESH_MS: "100",
    ...env,
  });
  const app = await startGateway(config, logger);
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  return {
    app,
    url,
    async call(path, init = {}) {
      const { as, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (typeof rest.body === "string" && !headers.has("content-type"))
        headers.set("content-type", "application/json");
      if (as)
        headers.set(
          "authorization",
          `Bearer ${await testToken(as.sub, as.role, as.role === "rider" ? "london" : undefined)}`,
        );
      return fetch(`${url}${path}`, { ...rest, headers });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.drain();
    },
  };
}

export interface GatewayFixture {
  readonly redis: RedisServer;
  readonly upstream: TestUpstream;
  readonly gateway: TestGateway;
}

/** For a test file: Redis, the stand-in upstream and a gateway using both (generous rate limit). */
export function useGatewayWithUpstream(env: Record<string, string> = {}): GatewayFixture {
  const fixture = {} as { redis: RedisServer; upstream: TestUpstream; gateway: TestGateway };
  beforeAll(async () => {
    fixture.redis = await startRedis();
    fixture.upstream = startTestUpstream();
    fixture.gateway = await startTestGateway({
      REDIS_URL: fixture.redis.url,
      ORDER_SERVICE_URL: fixture.upstream.url,
      SEARCH_SERVICE_URL: fixture.upstream.url,
      UPSTREAM_TIMEOUT_MS: "300",
      RATE_LIMIT_REQUESTS: "100000",
      ...env,
    });
  });
  afterAll(() =>
    cleanUpAll(
      () => fixture.gateway?.stop(),
      () => fixture.upstream?.stop(),
      () => fixture.redis?.stop(),
    ),
  );
  return fixture;
}
