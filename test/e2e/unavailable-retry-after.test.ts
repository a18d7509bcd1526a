// Every 503 in the JSON error shape says when to come back: apps (and the
// repo's tracking client) wait at least Retry-After, so a fleet does not
// retry in step against a node that cannot serve.
import { expect, test } from "bun:test";
import { Redis } from "ioredis";
import { startTestGateway } from "../support/gateway";
import { seedOrder } from "../support/orders";
import { startRedis } from "../support/redis-server";
import { testToken, uniqueId } from "../support/tokens";
import { startTestTracking } from "../support/tracking";

test("with Redis gone, the gateway's and the tracking node's 503s carry Retry-After", async () => {
  const redis = await startRedis();
  const db = new Redis(redis.url);
  // A short TTL bounds the node's leave() while its Redis is gone (the ring plays no part here).
  const node = await startTestTracking({ REDIS_URL: redis.url, TRACKING_NODE_TTL_MS: "1000" });
  const gateway = await startTestGateway({ REDIS_URL: redis.url });
  try {
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    await seedOrder(db, { orderId, customerId, riderId: uniqueId("rider") });
    db.disconnect();
    await redis.kill();
    const authorization = `Bearer ${await testToken(customerId, "customer")}`;
    const watch = await fetch(`${node.httpUrl}/v1/orders/${orderId}/track`, {
      headers: {
        authorization,
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
    const status = await fetch(`${gateway.url}/v1/orders/${orderId}/status`, {
      headers: { authorization },
    });
    for (const [where, response] of [
      ["tracking node", watch],
      ["gateway", status],
    ] as const) {
      const { error } = (await response.json()) as { error: { code: string } };
      expect({ where, status: response.status, code: error.code }).toEqual({
        where,
        status: 503,
        code: "unavailable",
      });
      expect({ where, retryAfter: response.headers.get("retry-after") }).toEqual({
        where,
        retryAfter: "1",
      });
    }
  } finally {
    await gateway.stop();
    await node.stop();
    await redis.stop();
  }
}, 30_000);
