import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { launchChromium } from "../../test/support/browser";
import { writeCharts } from "./chart-files";
import { type BarChart, formatNumber, type LineChart, renderChart, ticks } from "./svg-chart";

const latency: LineChart = {
  kind: "line",
  title: "Status reads: latency against offered load",
  x: { label: "offered load (req/s)" },
  y: { label: "latency (ms)", log: true },
  series: [
    {
      name: "p99",
      points: [
        { x: 2_500, y: 2 },
        { x: 10_000, y: 8 },
        { x: 20_000, y: 240, note: "achieved 15.1k req/s" },
      ],
    },
    {
      name: "bare route p99 <&>",
      dashed: true,
      points: [
        { x: 2_500, y: 1 },
        { x: 20_000, y: Number.NaN },
      ],
    },
  ],
};
const bars: BarChart = {
  kind: "bar",
  title: "Fan-out: frames/s delivered",
  y: { label: "frames/s" },
  groups: [
    {
      label: "as fast as it goes",
      bars: [
        { name: "node", value: 78_600 },
        { name: "raw", value: 216_000 },
      ],
    },
  ],
};

/** The numbers in the coordinate attributes of the SVG's circles, in order. */
const circles = (svg: string) =>
  [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [
    Number(m[1]),
    Number(m[2]),
  ]);

test("round ticks and short numbers", () => {
  expect(ticks(0, 23_000, false)).toEqual([0, 5_000, 10_000, 15_000, 20_000]);
  expect(ticks(0, 1, false)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  expect(ticks(1, 1_000, true)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000]);
  expect([12_500, 0.25, 3_000_000, 950].map(formatNumber)).toEqual(["12.5k", "0.25", "3M", "950"]);
});

test("a line chart puts each point where its values say, skips values it cannot draw, and escapes text", () => {
  const svg = renderChart(latency);
  expect(svg).toStartWith("<svg xmlns=");
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  expect(svg).toContain("bare route p99 &lt;&amp;&gt;");
  const [low, mid, high, bare] = circles(svg);
  // Log y from 1 to 1000 ms: 240 ms is above 8 ms, 8 ms above 2 ms, and the bare 1 ms on the axis floor.
  expect(high?.[1]).toBeLessThan(mid?.[1] ?? 0);
  expect(mid?.[1]).toBeLessThan(low?.[1] ?? 0);
  expect(bare?.[1]).toBe(420 - 64);
  expect(high?.[0]).toBeGreaterThan(mid?.[0] ?? Infinity);
  expect(circles(svg)).toHaveLength(4);
  expect(svg).toContain("<title>p99: 240 at 20k (achieved 15.1k req/s)</title>");
});

test("a bar chart draws one bar per value, taller for the larger", () => {
  const svg = renderChart(bars);
  const heights = [
    ...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/g),
  ].map((m) => Number(m[1]));
  expect(heights).toHaveLength(2);
  expect((heights[1] ?? 0) / (heights[0] ?? 1)).toBeCloseTo(216_000 / 78_600, 1);
});

test("charts land beside the results file, linked from the Markdown", () => {
  const folder = mkdtempSync(join(tmpdir(), "charts-"));
  try {
    const markdown = writeCharts(join(folder, "RESULTS.md"), [{ ...bars, name: "fanout-frames" }]);
    expect(markdown.trim()).toBe("![Fan-out: frames/s delivered](charts/fanout-frames.svg)");
    expect(readFileSync(join(folder, "charts", "fanout-frames.svg"), "utf8")).toBe(
      renderChart(bars),
    );
    expect(() => writeCharts(join(folder, "RESULTS.md"), [{ ...bars, name: "../x" }])).toThrow(
      /chart name/,
    );
  } finally {
    rmSync(folder, { recursive: true });
  }
});

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

test("Chromium opens both as images", async () => {
  const page = await browser.newPage();
  try {
    for (const chart of [latency, bars]) {
      const url = `data:image/svg+xml;base64,${Buffer.from(renderChart(chart)).toString("base64")}`;
      const size = await page.evaluate(
        (src) =>
          new Promise<number[]>((resolve) => {
            const image = new Image();
            image.onload = () => resolve([image.naturalWidth, image.naturalHeight]);
            image.onerror = () => resolve([0, 0]);
            image.src = src;
          }),
        url,
      );
      expect(size).toEqual([760, 420]);
    }
  } finally {
    await page.close();
  }
});
