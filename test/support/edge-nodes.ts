import { afterAll, beforeAll } from "bun:test";
import { Redis } from "ioredis";
import { cleanUpAll } from "./clean-up";
import { startTestGateway, type TestGateway } from "./gateway";
import { type RedisServer, startRedis } from "./redis-server";
import { startTestTracking, type TestTrackingNode } from "./tracking";
import { waitUntil } from "./wait";

export interface EdgeNodesFixture {
  readonly redis: RedisServer;
  /** A plain client for seeding and inspecting Redis. */
  readonly db: Redis;
  readonly nodes: readonly TestTrackingNode[];
  readonly gateway: TestGateway;
}

/**
 * For a test file: Redis, two tracking nodes and a gateway, started before
 * the tests with every ring already holding both nodes (rings converge
 * within one refresh; tests must not depend on that race). `env` goes to
 * every node and the gateway (a JWKS they share), `gatewayEnv` to the gateway.
 */
export function useGatewayAndTrackingNodes(
  gatewayEnv: Record<string, string> = {},
  env: Record<string, string> = {},
): EdgeNodesFixture {
  const fixture = {} as {
    redis: RedisServer;
    db: Redis;
    nodes: TestTrackingNode[];
    gateway: TestGateway;
  };
  beforeAll(async () => {
    fixture.redis = await startRedis();
    fixture.db = new Redis(fixture.redis.url);
    const nodeEnv = { ...env, REDIS_URL: fixture.redis.url };
    fixture.nodes = [await startTestTracking(nodeEnv), await startTestTracking(nodeEnv)];
    fixture.gateway = await startTestGateway({ ...nodeEnv, ...gatewayEnv });
    for (const app of [fixture.gateway.app, ...fixture.nodes.map((node) => node.app)]) {
      await waitUntil(async () => {
        await app.ring.refresh();
        return app.ring.nodes().length === 2;
      });
    }
  });
  afterAll(() =>
    cleanUpAll(
      () => fixture.gateway?.stop(),
      ...(fixture.nodes ?? []).map((node) => () => node.stop()),
      () => fixture.db?.disconnect(),
      () => fixture.redis?.stop(),
    ),
  );
  return fixture;
}
