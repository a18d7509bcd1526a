import { expect, test } from "bun:test";
import { placeLabels } from "./map-labels";

const measure = (text: string) => text.length * 6;
const area = { width: 400, height: 300, lineHeight: 14, measure };

function overlap(a: { left: number; top: number; right: number; bottom: number }, b: typeof a) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

test("labels around one busy restaurant never overlap; those without room are left out", () => {
  // Twenty couriers waiting at the same restaurant.
  const requests = Array.from({ length: 20 }, (_, n) => ({
    x: 200 + (n % 3),
    y: 150,
    text: `order-${n} READY`,
  }));
  const placed = placeLabels(requests, area);
  expect(placed.length).toBe(4);
  for (const [index, a] of placed.entries())
    for (const b of placed.slice(index + 1)) expect(overlap(a.box, b.box)).toBe(false);
  // The first asked for gets the first spot (right, above).
  expect(placed[0]?.text).toBe("order-0 READY");
  expect(placed[0]?.box.left).toBeGreaterThan(200);
  expect(placed[0]?.box.bottom).toBeLessThanOrEqual(150);
});

test("labels stay inside the canvas, flipping side at the edges", () => {
  const [right, bottom] = placeLabels(
    [
      { x: 395, y: 100, text: "edge-right" },
      { x: 50, y: 5, text: "edge-top" },
    ],
    area,
  );
  expect(right?.box.right).toBeLessThanOrEqual(400);
  expect(right?.box.left).toBeLessThan(395);
  expect(bottom?.box.top).toBeGreaterThanOrEqual(5);
  const spread = placeLabels(
    Array.from({ length: 10 }, (_, n) => ({ x: 20 + n * 38, y: 150, text: "ab" })),
    area,
  );
  expect(spread.length).toBe(10);
});
