import { describe, expect, test } from "bun:test";
import { CLOSE, TRACKING_SUBPROTOCOLS } from "../../core/protocol/tracking-protocol";
import { keys } from "../../core/redis/keys";
import { useGatewayAndTrackingNodes } from "../../test/support/edge-nodes";
import { seedOrder } from "../../test/support/orders";
import { DROPOFF, north, PICKUP } from "../../test/support/positions";
import { testToken, uniqueId } from "../../test/support/tokens";
import { openWatcher } from "../../test/support/tracking";
import { waitUntil } from "../../test/support/wait";
import type { LiveView } from "./live-view";

const fixture = useGatewayAndTrackingNodes({ RATE_LIMIT_REQUESTS: "100000" });
const ops = { sub: "ops-1", role: "ops" } as const;

describe("the live map page", () => {
  test("is served without a token, from this origin only, and tells a person how to get one", async () => {
    const page = await fixture.gateway.call("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('src="/live-map.js"');
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain("./edge demo");
    expect(html).toContain("./edge token -- --role ops");
  });

  test("its script is one bundle that takes the subprotocols and close rules from core", async () => {
    const script = await fixture.gateway.call("/live-map.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    const source = await script.text();
    // No imports left for the browser to fetch, and it parses as a module.
    expect(source).not.toMatch(/^\s*import\b/m);
    expect(() => new Bun.Transpiler({ loader: "js" }).scan(source)).not.toThrow();
    expect(source).toContain("/v1/ops/live");
    expect(source).toContain(TRACKING_SUBPROTOCOLS.json);
    for (const close of Object.values(CLOSE)) expect(source).toContain(String(close.code));
  });
});

describe("GET /v1/ops/live", () => {
  test("shows a city's fresh riders, their orders with each order's tracking node, and the nodes' figures", async () => {
    const { db, gateway } = fixture;
    const city = `live-${process.pid}`;
    const busy = uniqueId("rider");
    const idle = uniqueId("rider");
    const gone = uniqueId("rider");
    const now = Date.now();
    const idleAt = north(PICKUP, 1_000);
    const goneAt = north(PICKUP, 2_000);
    await db.geoadd(
      keys.cityRiders(city),
      PICKUP.lng,
      PICKUP.lat,
      busy,
      idleAt.lng,
      idleAt.lat,
      idle,
      goneAt.lng,
      goneAt.lat,
      gone,
    );
    await db.zadd(keys.cityRidersSeen(city), now, busy, now, idle, now - 600_000, gone);
    await db.sadd(keys.cities(), city);
    const orderId = uniqueId("order");
    await seedOrder(db, { orderId, customerId: uniqueId("cust"), riderId: busy, city });
    // Someone watches the order, so the tracking figures show a socket.
    const owner = gateway.app.ring.ownerOf(orderId);
    const watcher = await openWatcher(
      `${owner?.url}/v1/orders/${orderId}/track?access_token=${await testToken("ops-1", "ops")}`,
    );
    await watcher.waitForFrames(1);

    let view: LiveView | undefined;
    await waitUntil(async () => {
      const response = await gateway.call(`/v1/ops/live?city=${city}`, { as: ops });
      expect(response.status).toBe(200);
      view = (await response.json()) as LiveView;
      const reported = view.nodes.filter((node) => node.tier === "tracking").length;
      return view.totals.sockets >= 1 && reported === fixture.nodes.length;
    }, 8_000);
    watcher.close();
    if (!view) throw new Error("no view");

    expect(view.city).toBe(city);
    expect(view.cities).toContain(city);
    const riders = Object.fromEntries(view.riders.map((rider) => [rider.riderId, rider]));
    expect(Object.keys(riders).sort()).toEqual([busy, idle].sort());
    expect(riders[busy]?.orderIds).toEqual([orderId]);
    expect(riders[busy]?.lat).toBeCloseTo(PICKUP.lat, 4);
    expect(riders[idle]?.orderIds).toEqual([]);
    expect(view.orders).toEqual([
      {
        orderId,
        riderId: busy,
        status: "ASSIGNED",
        version: 2,
        pickup: PICKUP,
        dropoff: DROPOFF,
        node: { id: owner?.id ?? "", url: owner?.url ?? "" },
      },
    ]);
    const trackingNodes = view.nodes.filter((node) => node.tier === "tracking");
    expect(trackingNodes.map((node) => node.nodeId).sort()).toEqual(
      fixture.nodes.map((node) => node.id).sort(),
    );
    expect(trackingNodes.find((node) => node.nodeId === owner?.id)?.figures.sockets).toBe(1);
  });

  test("is for dispatchers and ops only, and wants a city id", async () => {
    const { gateway } = fixture;
    const asCustomer = await gateway.call("/v1/ops/live?city=london", {
      as: { sub: "c1", role: "customer" },
    });
    expect(asCustomer.status).toBe(403);
    expect(((await asCustomer.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    expect((await gateway.call("/v1/ops/live?city=london")).status).toBe(401);
    const badCity = await gateway.call("/v1/ops/live?city=Lon%7Bdon%7D", { as: ops });
    expect(badCity.status).toBe(400);
    const asDispatcher = await gateway.call("/v1/ops/live?city=nowhere", {
      as: { sub: "d1", role: "dispatcher" },
    });
    expect(asDispatcher.status).toBe(200);
    expect(((await asDispatcher.json()) as LiveView).riders).toEqual([]);
  });
});
