import { expect, test } from "bun:test";
import { createUpstreamFetch } from "./upstream-app";

const order = {
  customerId: "c1",
  restaurantId: "ldn-fish",
  items: [{ menuItemId: "ldn-fish-m1", quantity: 1 }],
  dropoff: { lat: 51.5, lng: -0.12 },
  paymentMethod: "card",
};

test("the stand-in order service honours Idempotency-Key: same body replays the order, another body 422", async () => {
  const upstream = createUpstreamFetch();
  const create = (body: unknown, key?: string) =>
    upstream(
      new Request("http://upstream/orders", {
        method: "POST",
        body: JSON.stringify(body),
        headers: key ? { "idempotency-key": key } : {},
      }),
    );
  const first = await create(order, "c1:k1");
  expect(first.status).toBe(201);
  const made = (await first.json()) as { id: string; total: number };
  expect(made.total).toBe(1150);
  const again = await create(order, "c1:k1");
  expect([again.status, again.headers.get("idempotent-replayed")]).toEqual([201, "true"]);
  expect(await again.json()).toEqual(made);
  const other = await create(
    { ...order, items: [{ menuItemId: "ldn-fish-m2", quantity: 1 }] },
    "c1:k1",
  );
  expect(other.status).toBe(422);
  const otherKey = (await (await create(order, "c1:k2")).json()) as { id: string };
  expect(otherKey.id).not.toBe(made.id);
  const noKey = [await create(order), await create(order)];
  const ids = await Promise.all(noKey.map(async (r) => ((await r.json()) as { id: string }).id));
  expect(new Set(ids).size).toBe(2);
  expect(
    (await upstream(new Request("http://upstream/orders", { method: "POST", body: "{" }))).status,
  ).toBe(400);
});
