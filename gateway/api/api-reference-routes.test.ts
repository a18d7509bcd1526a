import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import type { Browser } from "playwright-core";
import { launchChromium } from "../../test/support/browser";
import { useGatewayWithUpstream } from "../../test/support/gateway";
import { seedOrder } from "../../test/support/orders";
import { testToken, uniqueId } from "../../test/support/tokens";

/**
 * Chromium is slow here by nature, not by a fault: it starts, loads and runs
 * Swagger UI's 1.4 MB bundle and renders every operation. On a 2-core
 * machine the test took 8.9 s at load 4-12 and 37 s at load 14-23
 * (2026-12-02): the launch and the test get their own bounds rather than
 * bun's 5 s default (or whatever a runner passes).
 */
const CHROMIUM_LAUNCH_MS = 30_000;
const CHROMIUM_TEST_MS = 60_000;
/** A Playwright wait within the test's bound. */
const CHROMIUM_WAIT_MS = 40_000;

const fixture = useGatewayWithUpstream();
let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, CHROMIUM_LAUNCH_MS);
afterAll(async () => {
  await browser?.close();
});

test("the page and its assets come from the gateway, gzipped when asked, under a same-origin CSP", async () => {
  const page = await fetch(`${fixture.gateway.url}/docs`);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  // Every URL in the page is one of the gateway's own paths.
  const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
  expect(urls.sort()).toEqual([
    "/docs/api-reference.js",
    "/docs/favicon-32x32.png",
    "/docs/swagger-ui-bundle.js",
    "/docs/swagger-ui.css",
    "/openapi.json",
  ]);
  for (const url of urls) {
    const plain = await fetch(`${fixture.gateway.url}${url}`, {
      headers: { "accept-encoding": "identity" },
    });
    expect([url, plain.status, plain.headers.get("content-encoding")]).toEqual([url, 200, null]);
  }
  // Bun's fetch asks for gzip and inflates: the size on the wire is the header's.
  const raw = await fetch(`${fixture.gateway.url}/docs/swagger-ui-bundle.js`, {
    headers: { "accept-encoding": "gzip" },
    decompress: false,
  } as RequestInit);
  expect(raw.headers.get("content-encoding")).toBe("gzip");
  expect(Number(raw.headers.get("content-length"))).toBeLessThan(700_000);
});

test(
  "in Chromium: every operation is listed, nothing is fetched from elsewhere, and #token= authorizes a call that works",
  async () => {
    const db = new Redis(fixture.redis.url);
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    await seedOrder(db, { orderId, customerId });
    db.disconnect();
    const token = await testToken(customerId, "customer");
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const elsewhere: string[] = [];
    const problems: string[] = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(fixture.gateway.url) && !request.url().startsWith("data:"))
        elsewhere.push(request.url());
    });
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
    });
    try {
      await page.goto(`${fixture.gateway.url}/docs#token=${token}`);
      await page.waitForSelector(".opblock", { timeout: CHROMIUM_WAIT_MS });
      const api = (await (await fetch(`${fixture.gateway.url}/openapi.json`)).json()) as {
        paths: Record<string, Record<string, unknown>>;
      };
      const operations = Object.values(api.paths).flatMap((item) => Object.keys(item)).length;
      expect(await page.locator(".opblock").count()).toBe(operations);

      // Try the status route as the customer whose token the link carried.
      const status = page.locator(".opblock-get", { hasText: "/v1/orders/{id}/status" });
      await status.locator(".opblock-summary").click();
      await status.getByRole("button", { name: "Try it out" }).click();
      await status.locator('input[placeholder="id"]').fill(orderId);
      await status.getByRole("button", { name: "Execute" }).click();
      const answer = status.locator(".live-responses-table tbody .response-col_status").first();
      await answer.waitFor({ timeout: CHROMIUM_WAIT_MS });
      expect((await answer.textContent())?.trim()).toBe("200");
      expect(await status.locator(".live-responses-table").textContent()).toContain(orderId);
      if (process.env.SCREENSHOT_TO)
        await page.screenshot({ path: process.env.SCREENSHOT_TO, fullPage: false });
    } finally {
      await context.close();
    }
    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
  },
  CHROMIUM_TEST_MS,
);
