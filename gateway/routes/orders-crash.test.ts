import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { startGatewayProcess } from "../../test/support/gateway-process";
import { DROPOFF } from "../../test/support/positions";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { testToken, uniqueId } from "../../test/support/tokens";
import { startTestUpstream, type TestUpstream } from "../../test/support/upstream";
import { waitUntil } from "../../test/support/wait";

// kill -9 of a real gateway process while creates are in flight, then retries on a new one.
const UPSTREAM_TIMEOUT_MS = 2_000;
const LEASE_MARGIN_MS = 1_000;
const CREATES = 20;

let redis: RedisServer;
let upstream: TestUpstream;
const children: Subprocess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  upstream = startTestUpstream();
});

afterAll(async () => {
  for (const child of children) child.kill(9);
  await Promise.all(children.map((child) => child.exited));
  await upstream?.stop();
  await redis?.stop();
});

const startGateway = async () => {
  const started = await startGatewayProcess({
    REDIS_URL: redis.url,
    ORDER_SERVICE_URL: upstream.url,
    SEARCH_SERVICE_URL: upstream.url,
    UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
    IDEMPOTENCY_LEASE_MARGIN_MS: String(LEASE_MARGIN_MS),
  });
  children.push(started.child);
  return started;
};

const order = {
  restaurantId: "ldn-curry",
  items: [{ menuItemId: "ldn-curry-m1", quantity: 1 }],
  dropoff: DROPOFF,
  paymentMethod: "card",
};

test("kill -9 mid-create with 20 creates in flight: each retry gets its one order within seconds", async () => {
  const checkouts = await Promise.all(
    Array.from({ length: CREATES }, async () => {
      const customerId = uniqueId("cust");
      return { customerId, key: uniqueId("key"), token: await testToken(customerId, "customer") };
    }),
  );
  const create = (url: string, checkout: (typeof checkouts)[number]) =>
    fetch(`${url}/v1/orders`, {
      method: "POST",
      body: JSON.stringify(order),
      headers: {
        authorization: `Bearer ${checkout.token}`,
        "idempotency-key": checkout.key,
        "content-type": "application/json",
      },
    });

  const first = await startGateway();
  upstream.controls.delayMs = 1_000;
  const lost = checkouts.map((checkout) => create(first.url, checkout).catch((error) => error));
  await waitUntil(
    () => upstream.calls.filter((call) => call.path === "/orders").length >= CREATES,
    10_000,
    "every create reached the order service",
  );
  first.child.kill(9);
  await first.child.exited;
  const killedAt = performance.now();
  for (const outcome of await Promise.all(lost)) expect(outcome).toBeInstanceOf(Error);
  upstream.controls.delayMs = 0;
  // The order service finishes the orders the dead gateway asked for.
  await waitUntil(() => upstream.ordersCreated.length === CREATES, 5_000, "orders made upstream");

  const second = await startGateway();
  const answered = await Promise.all(
    checkouts.map(async (checkout) => {
      const statuses: number[] = [];
      for (;;) {
        const response = await create(second.url, checkout);
        statuses.push(response.status);
        if (response.status !== 409) {
          return {
            checkout,
            statuses,
            ms: performance.now() - killedAt,
            body: await response.json(),
          };
        }
        expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
        await Bun.sleep(100);
      }
    }),
  );
  for (const { checkout, statuses, ms, body } of answered) {
    expect(statuses.at(-1)).toBe(201);
    expect(statuses.slice(0, -1).every((status) => status === 409)).toBe(true);
    // Lease = upstream timeout + margin; the new process's own start-up counts here too.
    expect(ms).toBeLessThan(UPSTREAM_TIMEOUT_MS + LEASE_MARGIN_MS + 5_000);
    const made = upstream.ordersCreated.filter(
      (created) => created.key === `${checkout.customerId}:${checkout.key}`,
    );
    expect(made).toHaveLength(1);
    expect((body as { id: string }).id).toBe(made[0]?.orderId ?? "none");
  }
  expect(upstream.ordersCreated).toHaveLength(CREATES);
  const slowest = Math.max(...answered.map((a) => a.ms));
  console.log(`crash retry: every key answered within ${Math.round(slowest)} ms of the kill`);
});
