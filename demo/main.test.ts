import { expect, test } from "bun:test";
import { createConnection } from "node:net";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../test/support/browser";
import { type RunningDemo, startDemo } from "../test/support/demo-process";
import { countSockets, watchOrderChurn } from "../test/support/live-map-watch";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** How long the open and close counts run (the window). */
const WINDOW_MS = 30_000;

function portIsClosed(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

async function openPage(browser: Browser, viewport: typeof PHONE, link: string) {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(link);
  return { page, errors };
}

async function boxOf(page: Page, selector: string) {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} is not shown`);
  return box;
}

/**
 * The live map at desktop and phone sizes at once: riders drawn, orders
 * followed, the picture moving; over 30 s each page opens a socket only for
 * an order that started or ended (never the same order twice); the phone
 * leaves the map most of the screen; a followed order opens its customer
 * view; the bare page says what to do.
 */
async function checkLiveMap(demo: RunningDemo): Promise<void> {
  const browser = await launchChromium();
  try {
    const desktop = await openPage(browser, DESKTOP, demo.mapLink);
    const phone = await openPage(browser, PHONE, demo.mapLink);
    for (const { page } of [desktop, phone])
      await page.waitForFunction(
        () => Number(document.body.dataset.riders) > 0 && Number(document.body.dataset.frames) > 0,
        undefined,
        { timeout: 30_000 },
      );

    const counted = [countSockets(desktop.page), countSockets(phone.page)];
    const churn = watchOrderChurn(demo.gatewayUrl, demo.opsToken);
    const first = await desktop.page.locator("canvas").screenshot();
    await Bun.sleep(WINDOW_MS);
    const { started, ended } = await churn.stop();
    for (const counts of counted) {
      // The page and the watcher poll at different moments: one poll of slack at each edge.
      expect(counts.opens).toBeLessThanOrEqual(started + ended + 2);
      expect(new Set(counts.opened).size).toBe(counts.opens);
    }
    expect(Buffer.compare(first, await desktop.page.locator("canvas").screenshot())).not.toBe(0);
    expect(await desktop.page.locator("#counters").textContent()).toContain("pings/s");

    const desktopMap = await boxOf(desktop.page, "canvas");
    expect(desktopMap.width).toBeGreaterThanOrEqual(DESKTOP.width * 0.7);
    const phoneMap = await boxOf(phone.page, "canvas");
    expect(phoneMap.width).toBe(PHONE.width);
    expect(phoneMap.height).toBeGreaterThanOrEqual(PHONE.height * 0.65);

    // Picking a followed order shows it as its customer sees it, on the map.
    const followed = await phone.page.evaluate(() => document.body.dataset.follows ?? "");
    expect(followed).not.toBe("");
    await phone.page.locator("#orders button").first().click();
    await phone.page.locator("#timeline li").first().waitFor();
    expect(await phone.page.locator("#order-title").textContent()).toBe(
      `Order ${followed.split(",")[0]}`,
    );
    expect(await phone.page.locator("#timeline li").count()).toBeGreaterThanOrEqual(3);
    expect(await phone.page.locator("#order-facts").textContent()).toContain("courier");
    expect(await phone.page.locator("#map-panel").isHidden()).toBe(true);
    await phone.page.locator("#back").click();
    expect(await phone.page.locator("#order-panel").isHidden()).toBe(true);
    expect(await phone.page.locator("#orders button").count()).toBeGreaterThan(0);

    // The customer's own link (a customer token, no ops rights) shows their order.
    const customerLink = /as its customer sees it:\s+(http:\/\/\S+)/.exec(demo.printed)?.[1] ?? "";
    const customer = await openPage(browser, PHONE, customerLink);
    await customer.page.waitForFunction(() => document.body.dataset.orderStatus !== undefined);
    expect(await customer.page.locator("#timeline li").count()).toBeGreaterThanOrEqual(3);
    expect(await customer.page.locator("#order-facts").textContent()).toContain("drop-off");

    // A bare `/` tells a person how to get a link.
    const bare = await openPage(browser, PHONE, demo.gatewayUrl);
    const welcome = await bare.page.locator("#welcome").textContent();
    expect(welcome).toContain("./edge demo");
    expect(welcome).toContain("./edge token -- --role ops");

    // A customer's token on the city map: told what it is for, not a bare 403.
    const wrong = await openPage(browser, PHONE, customerLink.replace(/&order=[^&]*/, ""));
    await wrong.page.locator("#notice").waitFor();
    expect(await wrong.page.locator("#notice").textContent()).toContain("&order=<id>");

    for (const { errors } of [desktop, phone, customer, bare]) expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}

test("`bun run demo` starts everything from a clean state, serves the API and the live map, and Ctrl-C leaves nothing listening", async () => {
  // The caller's BIND_HOST does not open the demo to the network.
  const demo = await startDemo({ BIND_HOST: "0.0.0.0" });
  const { printed, ports } = demo;
  const status = /curl -s -H 'authorization: Bearer ([^']+)' (http:\/\/\S+\/status)/.exec(printed);
  expect(status).not.toBeNull();
  const response = await fetch(status?.[2] ?? "", {
    headers: { authorization: `Bearer ${status?.[1]}` },
  });
  expect(response.status).toBe(200);
  expect(((await response.json()) as { status: string }).status).toMatch(
    /^(CONFIRMED|ASSIGNED|READY|PICKED_UP|DELIVERED|CANCELLED)$/,
  );

  // A newcomer's token, minted after the demo started with nothing exported, works against it.
  const minted = Bun.spawnSync(
    [
      process.execPath,
      join(import.meta.dir, "..", "core", "auth", "token-cli.ts"),
      "--role",
      "ops",
      "--sub",
      "newcomer",
    ],
    { env: { PATH: process.env.PATH, DEV_JWT_SECRET_FILE: demo.secretFile } },
  );
  expect(minted.exitCode).toBe(0);
  const asNewcomer = await fetch(`${demo.gatewayUrl}/v1/ops/live?city=london`, {
    headers: { authorization: `Bearer ${minted.stdout.toString().trim()}` },
  });
  expect(asNewcomer.status).toBe(200);
  expect(printed).toContain("./edge token -- --role");

  // The API reference link it prints: the page, and the document it reads.
  const reference = /API reference[^\n]*\n\s+(http:\/\/\S+)/.exec(printed)?.[1] ?? "";
  expect(reference).toStartWith(`${demo.gatewayUrl}/docs#token=`);
  expect((await fetch(reference)).status).toBe(200);
  expect((await fetch(`${demo.gatewayUrl}/openapi.json`)).status).toBe(200);

  expect(demo.mapLink).toStartWith(`http://127.0.0.1:${ports.GATEWAY_PORT}/#token=`);
  await checkLiveMap(demo);

  const redisPort = Number(/Redis\s+redis:\/\/127\.0\.0\.1:(\d+)/.exec(printed)?.[1]);
  expect(redisPort).toBeGreaterThan(0);
  const trackingPorts = [0, 1, 2].map((n) => ports.TRACKING_PORT + n);
  const listening = [...Object.values(ports), ...trackingPorts, redisPort];
  // Loopback only (the demo prints tokens it signs): all of 127/8 is this
  // host, and a listener on 0.0.0.0 would answer 127.0.0.2 too.
  for (const port of listening)
    expect({ port, elsewhere: await portIsClosed(port, "127.0.0.2") }).toEqual({
      port,
      elsewhere: true,
    });

  expect(await demo.stop()).toBe(0);
  for (const port of listening) expect(await portIsClosed(port)).toBe(true);
}, 150_000);
