import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { compileErrors, validate } from "@readme/openapi-parser";
import type { Role } from "../../core/auth/identity";
import { startTestGateway, type TestGateway } from "../../test/support/gateway";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { startTestTracking, type TestTrackingNode } from "../../test/support/tracking";
import { startTestUpstream, type TestUpstream } from "../../test/support/upstream";
import { waitUntil } from "../../test/support/wait";
import { DISPATCH_DEFAULTS } from "../config";
import { apiDocument, apiRoutes } from "./api-document";

type Json = Record<string, unknown>;
type Route = ReturnType<typeof apiRoutes>[number];

const COMMITTED = join(import.meta.dir, "..", "..", "docs", "openapi.json");
const committed = (await Bun.file(COMMITTED).json()) as Json;
const routes = apiRoutes(DISPATCH_DEFAULTS);
const routeOf = (method: string, path: string): Route => {
  const route = routes.find((r) => r.method === method && r.path === path);
  if (!route) throw new Error(`no declared route ${method} ${path}`);
  return route;
};

const fixture = {} as {
  redis: RedisServer;
  upstream: TestUpstream;
  node: TestTrackingNode;
  gateway: TestGateway;
};
beforeAll(async () => {
  fixture.redis = await startRedis();
  fixture.upstream = startTestUpstream();
  fixture.node = await startTestTracking({ REDIS_URL: fixture.redis.url });
  fixture.gateway = await startTestGateway({
    REDIS_URL: fixture.redis.url,
    ORDER_SERVICE_URL: fixture.upstream.url,
    SEARCH_SERVICE_URL: fixture.upstream.url,
    RATE_LIMIT_REQUESTS: "100000",
  });
  await waitUntil(async () => {
    await fixture.gateway.app.ring.refresh();
    return fixture.gateway.app.ring.nodes().length === 1;
  });
});
afterAll(async () => {
  await fixture.gateway?.stop();
  await fixture.node?.stop();
  await fixture.upstream?.stop();
  await fixture.redis?.stop();
});

/**
 * The answer is one the route declares: its status is listed, and its JSON
 * body parses with that status's schema to itself (no undocumented field).
 */
async function expectDeclared(route: Route, response: Response): Promise<Json> {
  const declared = (
    route.responses as Record<
      string,
      { content?: Record<string, { schema: { parse(v: unknown): unknown } }> }
    >
  )[String(response.status)];
  const label = `${route.method.toUpperCase()} ${route.path} answered ${response.status}`;
  expect({ label, declared: declared !== undefined }).toEqual({ label, declared: true });
  const body = (await response.json()) as Json;
  const schema = declared?.content?.["application/json"]?.schema;
  if (!schema) throw new Error(`${label}: no JSON schema declared`);
  expect({ label, body: schema.parse(body) }).toEqual({ label, body });
  return body;
}

/** A value built from a schema's required properties and examples (what a client reading only the document would send). */
function exampleOf(doc: Json, node: unknown): unknown {
  let schema = node as Json;
  while (typeof schema.$ref === "string")
    schema = schema.$ref
      .slice(2)
      .split("/")
      .reduce<Json>((at, key) => at[key] as Json, doc);
  if (schema.example !== undefined) return schema.example;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.type === "object") {
    const properties = schema.properties as Json;
    const required = (schema.required ?? []) as string[];
    return Object.fromEntries(required.map((name) => [name, exampleOf(doc, properties[name])]));
  }
  if (schema.type === "array")
    return Array.from({ length: Number(schema.minItems ?? 1) }, () => exampleOf(doc, schema.items));
  throw new Error(`no example for ${JSON.stringify(schema)}`);
}

const call = (path: string, as: { sub: string; role: Role } | undefined, init: RequestInit = {}) =>
  fixture.gateway.call(path, { ...init, ...(as ? { as } : {}) });

describe("the OpenAPI document", () => {
  test("is valid OpenAPI 3.1, equals docs/openapi.json (`./edge openapi:gen`) and what the gateway serves", async () => {
    const result = await validate(structuredClone(committed) as never);
    expect(result.valid ? "valid" : compileErrors(result)).toBe("valid");
    expect(committed.openapi).toBe("3.1.0");
    const built = JSON.parse(JSON.stringify(apiDocument(DISPATCH_DEFAULTS)));
    expect(built).toEqual(committed);
    const served = await fetch(`${fixture.gateway.url}/openapi.json`);
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual(committed);
  });

  test("lists every route the gateway serves, and the gateway serves every route it lists", () => {
    const documented = routes.map((r) => `${r.method.toUpperCase()} ${r.path}`).sort();
    // The live map's page and the reference page's assets are pages, not API.
    const pages = new Set(["/", "/live-map.js", "/live-map.css"]);
    const served = fixture.gateway.app.routes
      .filter(({ path }) => !pages.has(path) && !path.startsWith("/docs/"))
      .map(({ method, path }) => `${method} ${path.replace(/:(\w+)/g, "{$1}")}`)
      .sort();
    expect([...new Set(served)]).toEqual(documented);
  });
});

describe("every route answers what the document declares", () => {
  const customer = { sub: uniqueId("cust"), role: "customer" } as const;
  const dispatcher = { sub: "d1", role: "dispatcher" } as const;
  const riderId = uniqueId("rider");
  const rider = { sub: riderId, role: "rider" } as const;

  test("a whole order: search, menu, place, status, track, candidates, offer, accept, READY, live view", async () => {
    const search = routeOf("get", "/v1/restaurants");
    const found = await expectDeclared(
      search,
      await call("/v1/restaurants?lat=51.5155&lng=-0.0755&q=curry", customer),
    );
    expect((found.restaurants as { id: string }[]).map((r) => r.id)).toContain("ldn-curry");
    await expectDeclared(
      routeOf("get", "/v1/restaurants/{id}/menu"),
      await call("/v1/restaurants/ldn-curry/menu", customer),
    );

    // The body a client builds from the document alone (its required properties and examples).
    const create = routeOf("post", "/v1/orders");
    const orderBody = exampleOf(
      committed,
      (committed.components as Json & { schemas: Json }).schemas.OrderRequest,
    );
    const placed = await expectDeclared(
      create,
      await call("/v1/orders", customer, {
        method: "POST",
        headers: { "idempotency-key": uniqueId("key") },
        body: JSON.stringify(orderBody),
      }),
    );
    const orderId = String(placed.id);
    const status = await expectDeclared(
      routeOf("get", "/v1/orders/{id}/status"),
      await call(`/v1/orders/${orderId}/status`, customer),
    );
    expect(status.status).toBe("CONFIRMED");
    const track = await expectDeclared(
      routeOf("get", "/v1/orders/{id}/track"),
      await call(`/v1/orders/${orderId}/track`, customer),
    );
    expect(track.url).toBe(`${fixture.node.url}/v1/orders/${orderId}/track`);
    await expectDeclared(
      routeOf("get", "/v1/dispatch/candidates"),
      await call("/v1/dispatch/candidates?city=london&lat=51.5155&lng=-0.0755", dispatcher),
    );
    const offer = await expectDeclared(
      routeOf("post", "/v1/dispatch/offers"),
      await call("/v1/dispatch/offers", dispatcher, {
        method: "POST",
        body: JSON.stringify({ orderId, riderId, city: "london" }),
      }),
    );
    const accepted = await expectDeclared(
      routeOf("patch", "/v1/rides/{orderId}"),
      await call(`/v1/rides/${orderId}`, rider, {
        method: "PATCH",
        body: JSON.stringify({ action: "accept", token: offer.fencingToken }),
      }),
    );
    const ready = await expectDeclared(
      routeOf("post", "/v1/orders/{id}/status"),
      await call(
        `/v1/orders/${orderId}/status`,
        { sub: "ldn-curry", role: "restaurant" },
        {
          method: "POST",
          body: JSON.stringify({ to: "READY", expectedVersion: accepted.version }),
        },
      ),
    );
    expect(ready.status).toBe("READY");
    await expectDeclared(
      routeOf("get", "/v1/ops/live"),
      await call("/v1/ops/live?city=london", { sub: "o1", role: "ops" }),
    );
  });

  test("refusals carry a code the route declares for that status", async () => {
    const change = routeOf("post", "/v1/orders/{id}/status");
    const cases: [Route, Promise<Response>, number][] = [
      [
        routeOf("get", "/v1/orders/{id}/status"),
        call("/v1/orders/no-such-order/status", customer),
        404,
      ],
      [routeOf("get", "/v1/orders/{id}/status"), call("/v1/orders/x/status", undefined), 401],
      [
        routeOf("post", "/v1/dispatch/offers"),
        call("/v1/dispatch/offers", customer, { method: "POST", body: "{}" }),
        403,
      ],
      [
        change,
        call("/v1/orders/x/status", customer, {
          method: "POST",
          body: "{",
          headers: { "content-type": "application/json" },
        }),
        400,
      ],
      [
        change,
        call("/v1/orders/x/status", customer, {
          method: "POST",
          body: "to=READY",
          headers: { "content-type": "text/plain" },
        }),
        415,
      ],
      [
        change,
        call(
          "/v1/orders/no-such-order/status",
          { sub: "o1", role: "ops" },
          { method: "POST", body: '{"to":"READY","expectedVersion":1}' },
        ),
        404,
      ],
    ];
    for (const [route, pending, status] of cases) {
      const response = await pending;
      expect([route.path, response.status]).toEqual([route.path, status]);
      await expectDeclared(route, response);
    }
  });
});

describe("schema refusals: 400 bad_request naming the field and its rule", () => {
  const customer = { sub: "c-schema", role: "customer" } as const;
  const valid = exampleOf(
    committed,
    (committed.components as Json & { schemas: Json }).schemas.OrderRequest,
  ) as Json;
  const place = (
    body: unknown,
    key: string | undefined = uniqueId("key"),
    headers: Record<string, string> = {},
  ) =>
    call("/v1/orders", customer, {
      method: "POST",
      headers: { ...(key ? { "idempotency-key": key } : {}), ...headers },
      ...(body === undefined
        ? {}
        : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
  const cases: [string, () => Promise<Response>, string][] = [
    [
      "an item's quantity",
      () => place({ ...valid, items: [{ menuItemId: "ldn-curry-m1", quantity: 100 }] }),
      "items[0].quantity must be an integer from 1 to 99",
    ],
    ["no items", () => place({ ...valid, items: [] }), "items must be a list of 1 to 50 items"],
    [
      "a drop-off off the map",
      () => place({ ...valid, dropoff: { lat: 89, lng: 0 } }),
      "dropoff.lat must be a latitude from -85.05112878 to 85.05112878",
    ],
    [
      "a drop-off that is not a point",
      () => place({ ...valid, dropoff: "home" }),
      "dropoff must be {lat, lng}",
    ],
    [
      "a missing field",
      () => place({ ...valid, paymentMethod: undefined }),
      "paymentMethod must be a payment method id (1-64 of A-Z a-z 0-9 . _ : -)",
    ],
    ["a body that is a list", () => place([valid]), "body must be a JSON object"],
    [
      "no Idempotency-Key",
      () => place(valid, ""),
      "Idempotency-Key must be 8-128 of A-Z a-z 0-9 _ -",
    ],
    ["malformed JSON", () => place("{"), "body must be JSON"],
    [
      "no body at all",
      () => place(undefined),
      "a JSON body is required (Content-Type: application/json)",
    ],
    [
      "a query number with an exponent",
      () => call("/v1/restaurants?lat=5e1&lng=0", customer),
      "lat must be a decimal number from -85.05112878 to 85.05112878",
    ],
    [
      "a repeated query parameter",
      () => call("/v1/restaurants?lat=51&lat=52&lng=0", customer),
      "lat must be a decimal number from -85.05112878 to 85.05112878",
    ],
    [
      "a path id that is not a key part",
      () => call("/v1/orders/a%7Bb%7D/status", customer),
      "id must be an order id (1-64 of A-Z a-z 0-9 . _ : -)",
    ],
  ];
  for (const [name, send, message] of cases) {
    test(name, async () => {
      const response = await send();
      const body = (await response.json()) as {
        error: { code: string; message: string; requestId: string };
      };
      expect([response.status, body.error.code, body.error.message]).toEqual([
        400,
        "bad_request",
        message,
      ]);
      expect(body.error.requestId).toBe(response.headers.get("x-request-id") ?? "missing");
    });
  }
});
