import { describe, expect, test } from "bun:test";
import { useGatewayWithUpstream } from "../../test/support/gateway";
import { uniqueId } from "../../test/support/tokens";
import { normaliseQuery } from "./restaurants";

const fixture = useGatewayWithUpstream();

const searchCalls = () =>
  fixture.upstream.calls.filter((call) => call.path === "/restaurants").length;
const search = (query: string, lat = 51.5136, lng = -0.1365) =>
  fixture.gateway.call(`/v1/restaurants?lat=${lat}&lng=${lng}&q=${encodeURIComponent(query)}`, {
    as: { sub: uniqueId("cust"), role: "customer" },
  });

describe("GET /v1/restaurants", () => {
  test("100 concurrent misses for one key make one upstream call; then it is a cache hit", async () => {
    const before = searchCalls();
    fixture.upstream.controls.delayMs = 50;
    let responses: Response[];
    try {
      responses = await Promise.all(Array.from({ length: 100 }, () => search("pizza")));
    } finally {
      fixture.upstream.controls.delayMs = 0;
    }
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect((bodies[0] as { restaurants: { id: string }[] }).restaurants.map((r) => r.id)).toEqual([
      "ldn-pizza",
    ]);
    expect(searchCalls()).toBe(before + 1);
    // Same cell (a few hundred metres away), same words in another order and case: a hit.
    const again = await search("  PIZZA ", 51.5141, -0.1331);
    expect(again.headers.get("x-cache")).toBe("hit");
    expect(searchCalls()).toBe(before + 1);
  });

  test("upstream failures are 502/504 and not cached; bad coordinates 400", async () => {
    const before = searchCalls();
    fixture.upstream.controls.failWith = 503;
    const failed = await search("fish");
    fixture.upstream.controls.failWith = 0;
    expect(failed.status).toBe(502);
    fixture.upstream.controls.delayMs = 1_000;
    const slow = await search("fish");
    fixture.upstream.controls.delayMs = 0;
    expect(slow.status).toBe(504);
    const ok = await search("fish");
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-cache")).toBe("miss");
    expect(searchCalls()).toBe(before + 3);
    expect(
      (
        await fixture.gateway.call("/v1/restaurants?lat=nope&lng=0", {
          as: { sub: "c", role: "customer" },
        })
      ).status,
    ).toBe(400);
  });

  test("the menu is proxied; an unknown restaurant is 404", async () => {
    const menu = await fixture.gateway.call("/v1/restaurants/ldn-fish/menu", {
      as: { sub: "c", role: "customer" },
    });
    expect(menu.status).toBe(200);
    expect(((await menu.json()) as { items: unknown[] }).items).toHaveLength(2);
    expect(
      (
        await fixture.gateway.call("/v1/restaurants/nope/menu", {
          as: { sub: "c", role: "customer" },
        })
      ).status,
    ).toBe(404);
  });

  test("query normalisation ignores case, spacing and word order", () => {
    expect(normaliseQuery("  Thai   Green curry ")).toBe(normaliseQuery("curry green THAI"));
  });
});
