import { describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import pino from "pino";
import { keys } from "../../core/redis/keys";
import { startTestGateway, useGatewayWithUpstream } from "../../test/support/gateway";
import { DROPOFF } from "../../test/support/positions";
import { uniqueId } from "../../test/support/tokens";
import { ORDER_REJECTED_MESSAGE } from "./orders";

const fixture = useGatewayWithUpstream();

const order = {
  restaurantId: "ldn-curry",
  items: [
    { menuItemId: "ldn-curry-m1", quantity: 2, price: 1 },
    { menuItemId: "ldn-curry-m3", quantity: 1 },
  ],
  dropoff: DROPOFF,
  paymentMethod: "card",
  total: 1,
  customerId: "someone-else",
};

function place(customerId: string, key: string | undefined, body: unknown = order) {
  return fixture.gateway.call("/v1/orders", {
    method: "POST",
    body: JSON.stringify(body),
    headers: key ? { "idempotency-key": key } : {},
    as: { sub: customerId, role: "customer" },
  });
}

const ordersCalls = () => fixture.upstream.calls.filter((call) => call.path === "/orders");

describe("POST /v1/orders", () => {
  test("creates the order as the token's customer, forwards no prices, writes the tracking record, replays", async () => {
    const customerId = uniqueId("cust");
    const key = uniqueId("key");
    const before = ordersCalls().length;
    const created = await place(customerId, key);
    expect(created.status).toBe(201);
    const body = (await created.json()) as {
      id: string;
      customerId: string;
      city: string;
      status: string;
      total: number;
      pickup: { lat: number; lng: number };
      dropoff: { lat: number; lng: number };
    };
    expect(body).toMatchObject({
      customerId,
      restaurantId: "ldn-curry",
      city: "london",
      status: "CONFIRMED",
      total: 2 * 1250 + 350,
    });
    const sent = ordersCalls().at(-1)?.body as Record<string, unknown>;
    expect(sent.customerId).toBe(customerId);
    expect(sent.total).toBeUndefined();
    expect(sent.items).toEqual([
      { menuItemId: "ldn-curry-m1", quantity: 2 },
      { menuItemId: "ldn-curry-m3", quantity: 1 },
    ]);
    const status = await fixture.gateway.call(`/v1/orders/${body.id}/status`, {
      as: { sub: customerId, role: "customer" },
    });
    // The tracking record holds where the order goes, from the order service's answer.
    expect(await status.json()).toEqual({
      orderId: body.id,
      status: "CONFIRMED",
      version: 1,
      pickup: body.pickup,
      dropoff: body.dropoff,
    });

    const replay = await place(customerId, key);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.json()).toEqual(body);
    expect(ordersCalls().length).toBe(before + 1);
    // Keys are per customer: another customer's same key is a new order.
    expect((await place(uniqueId("cust"), key)).status).toBe(201);
  });

  test("missing key 400, same key with another body 422, bad bodies 400", async () => {
    const customerId = uniqueId("cust");
    expect((await place(customerId, undefined)).status).toBe(400);
    expect((await place(customerId, "short")).status).toBe(400);
    const key = uniqueId("key");
    expect((await place(customerId, key)).status).toBe(201);
    const other = await place(customerId, key, {
      ...order,
      items: [{ menuItemId: "ldn-curry-m2", quantity: 1 }],
    });
    expect(other.status).toBe(422);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe(
      "idempotency_mismatch",
    );
    for (const bad of [
      { ...order, items: [] },
      { ...order, dropoff: { lat: 100, lng: 0 } },
      { ...order, items: [{ menuItemId: "x", quantity: 0 }] },
    ]) {
      expect((await place(customerId, uniqueId("key"), bad)).status).toBe(400);
    }
    expect(
      (
        await fixture.gateway.call("/v1/orders", {
          method: "POST",
          body: JSON.stringify(order),
          headers: { "idempotency-key": uniqueId("key") },
          as: { sub: "d", role: "dispatcher" },
        })
      ).status,
    ).toBe(403);
  });

  test("50 concurrent requests with one key: one upstream call, the others 409 in flight or a replay", async () => {
    const customerId = uniqueId("cust");
    const key = uniqueId("key");
    const before = ordersCalls().length;
    fixture.upstream.controls.delayMs = 100;
    try {
      const responses = await Promise.all(Array.from({ length: 50 }, () => place(customerId, key)));
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(49);
    } finally {
      fixture.upstream.controls.delayMs = 0;
    }
    expect(ordersCalls().length).toBe(before + 1);
  });

  test("an upstream 5xx or timeout is not stored: 502/504 now, the same key works once it recovers", async () => {
    const customerId = uniqueId("cust");
    const key = uniqueId("key");
    fixture.upstream.controls.failWith = 503;
    const failed = await place(customerId, key);
    fixture.upstream.controls.failWith = 0;
    expect(failed.status).toBe(502);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe(
      "upstream_failed",
    );
    fixture.upstream.controls.delayMs = 1_000;
    const slow = await place(customerId, key);
    fixture.upstream.controls.delayMs = 0;
    expect(slow.status).toBe(504);
    const retried = await place(customerId, key);
    expect(retried.status).toBe(201);
    expect(retried.headers.get("idempotent-replayed")).toBeNull();
  });

  test("an order the service refuses (unknown dish) is 422 order_rejected, and replayed as such", async () => {
    const customerId = uniqueId("cust");
    const key = uniqueId("key");
    const refused = await place(customerId, key, {
      ...order,
      items: [{ menuItemId: "nope", quantity: 1 }],
    });
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "order_rejected",
    );
    const again = await place(customerId, key, {
      ...order,
      items: [{ menuItemId: "nope", quantity: 1 }],
    });
    expect(again.status).toBe(422);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });

  test("a refusal's own text stays out of the answer (replayed the same) and the log: the gateway logs the service's status and short code", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: "info" },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const gateway = await startTestGateway(
      {
        REDIS_URL: fixture.redis.url,
        ORDER_SERVICE_URL: fixture.upstream.url,
        SEARCH_SERVICE_URL: fixture.upstream.url,
      },
      logger,
    );
    try {
      // The stand-in service names the dish it refused: its words, not the edge's contract.
      const dish = uniqueId("internal-dish");
      const body = JSON.stringify({ ...order, items: [{ menuItemId: dish, quantity: 1 }] });
      const as = { sub: uniqueId("cust"), role: "customer" as const };
      const headers = { "idempotency-key": uniqueId("key") };
      const answers = [];
      for (let n = 0; n < 2; n++) {
        const answer = await gateway.call("/v1/orders", { method: "POST", body, headers, as });
        answers.push({
          status: answer.status,
          replayed: answer.headers.get("idempotent-replayed"),
          error: ((await answer.json()) as { error: { code: string; message: string } }).error,
          requestId: answer.headers.get("x-request-id"),
        });
      }
      for (const [n, answer] of answers.entries())
        expect(answer).toMatchObject({
          status: 422,
          replayed: n === 0 ? null : "true",
          error: { code: "order_rejected", message: ORDER_REJECTED_MESSAGE },
        });
      expect(JSON.stringify(answers)).not.toContain(dish);
      expect(JSON.stringify(lines)).not.toContain(dish);
      const refusals = lines.filter((line) => line.msg === "the order service refused the order");
      expect(refusals).toEqual([
        expect.objectContaining({
          requestId: answers[0]?.requestId,
          upstreamStatus: 422,
          upstreamCode: "unknown_menu_item",
        }),
      ]);
    } finally {
      await gateway.stop();
    }
  });

  test("a refusal stored with the service's own text (before the message was fixed) replays with the fixed message", async () => {
    const customerId = uniqueId("cust");
    const key = uniqueId("key");
    const body = { ...order, items: [{ menuItemId: "nope", quantity: 1 }] };
    expect((await place(customerId, key, body)).status).toBe(422);
    // The answer as stored before: the service's words as the message.
    const db = new Redis(fixture.redis.url);
    try {
      const stored = JSON.parse(
        (await db.hget(keys.idempotency(customerId, key), "body")) ?? "{}",
      ) as { error: { message: string; requestId: string } };
      stored.error.message = "no such menu item nope for Jane Doe, 1 Main St";
      await db.hset(keys.idempotency(customerId, key), "body", JSON.stringify(stored));
      const replay = await place(customerId, key, body);
      expect(replay.status).toBe(422);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      expect(await replay.json()).toEqual({
        error: {
          code: "order_rejected",
          message: ORDER_REJECTED_MESSAGE,
          requestId: stored.error.requestId,
        },
      });
    } finally {
      db.disconnect();
    }
  });
});
