import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import type { Browser, Page } from "playwright-core";
import { RETRY_AFTER_MAX_MS } from "../../clients/backoff";
import { keys } from "../../core/redis/keys";
import { launchChromium } from "../../test/support/browser";
import { useGatewayAndTrackingNodes } from "../../test/support/edge-nodes";
import { startTestGateway, type TestGateway } from "../../test/support/gateway";
import { seedOrder } from "../../test/support/orders";
import { startRedis } from "../../test/support/redis-server";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { STATUS_POLL_BACKOFF, STATUS_POLL_EVERY_MS } from "./browser/status-poll-plan";

// The order's restaurant on the one-order page, in Debian's Chromium against
// a real gateway: refused the courier (403 on the track lookup), it gets the
// status timeline, kept current by status reads. The page's clock is
// Playwright's (paused, moved on by the test), so the schedule is checked
// to the millisecond without the test sleeping through it; the reads are real.
const fixture = useGatewayAndTrackingNodes({ RATE_LIMIT_REQUESTS: "100000" });
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

interface PageState {
  status?: string;
  poll?: string;
  reads: number;
  notice: string;
}

/** The restaurant's page for a fresh order of its own, loaded, its clock paused. */
async function openRestaurantPage(
  gateway: TestGateway,
  restaurantId: string,
  riderId: string,
  db: Redis = fixture.db,
) {
  const orderId = uniqueId("order");
  await seedOrder(db, { orderId, customerId: uniqueId("cust"), riderId, restaurantId });
  const token = await testToken(restaurantId, "restaurant");
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  // Paused ahead of where the installed clock may have flowed to (pausing in its past throws).
  const installedAt = Date.now();
  await page.clock.install({ time: installedAt });
  await page.clock.pauseAt(installedAt + 60_000);
  await page.goto(`${gateway.url}/#${new URLSearchParams({ token, order: orderId })}`);
  const state = (): Promise<PageState> =>
    page.evaluate(() => ({
      status: document.body.dataset.orderStatus,
      poll: document.body.dataset.statusPoll,
      reads: Number(document.body.dataset.statusReads ?? 0),
      notice: document.querySelector("#notice")?.textContent ?? "",
    }));
  /** Waits (real time) until the page's reads are answered and it shows what `expected` says. */
  const shows = async (expected: Partial<PageState>) => {
    let last: PageState | undefined;
    await waitUntil(
      async () => {
        last = await state();
        return Object.entries(expected).every(
          ([name, value]) => last?.[name as keyof PageState] === value,
        );
      },
      5_000,
      `the page showing ${JSON.stringify(expected)} (last: ${JSON.stringify(last)})`,
    );
  };
  await shows({ status: "ASSIGNED", poll: "waiting", reads: 0 });
  return { orderId, page, errors, state, shows };
}

/** Moves the order one step, as the party allowed to take it. */
async function step(
  gateway: TestGateway,
  orderId: string,
  to: string,
  expectedVersion: number,
  as: { sub: string; role: "restaurant" | "rider" },
) {
  const body = JSON.stringify({ to, expectedVersion });
  const answer = await gateway.call(`/v1/orders/${orderId}/status`, { method: "POST", body, as });
  expect(answer.status).toBe(200);
}

/** Shows or hides the page as a switched tab would (headless Chromium never hides one itself). */
function setVisibility(page: Page, state: "hidden" | "visible") {
  return page.evaluate((state) => {
    if (state === "hidden")
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    else delete (document as { visibilityState?: unknown }).visibilityState;
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);
}

describe("the one-order page for the order's restaurant (no map: 403 on the track lookup)", () => {
  test("its timeline follows the status without a reload, every 5 s, up to the order's end; then it reads no more", async () => {
    const { gateway } = fixture;
    const restaurant = { sub: uniqueId("rest"), role: "restaurant" } as const;
    const rider = { sub: uniqueId("rider"), role: "rider" } as const;
    const { orderId, page, errors, state, shows } = await openRestaurantPage(
      gateway,
      restaurant.sub,
      rider.sub,
    );
    expect((await state()).notice).toContain("403");
    expect(await page.locator("#timeline li.current").textContent()).toStartWith(
      "courier assigned",
    );

    await step(gateway, orderId, "READY", 2, restaurant);
    // Not read before it is due.
    await page.clock.runFor(STATUS_POLL_EVERY_MS - 1);
    expect(await state()).toMatchObject({ status: "ASSIGNED", reads: 0 });
    await page.clock.runFor(1);
    await shows({ status: "READY", poll: "waiting", reads: 1 });
    expect(await page.locator("#timeline li.current").textContent()).toStartWith("food ready");

    await step(gateway, orderId, "PICKED_UP", 3, rider);
    await page.clock.runFor(STATUS_POLL_EVERY_MS);
    await shows({ status: "PICKED_UP", reads: 2 });
    await step(gateway, orderId, "DELIVERED", 4, rider);
    await page.clock.runFor(STATUS_POLL_EVERY_MS);
    await shows({ status: "DELIVERED", poll: "stopped", reads: 3 });
    expect((await state()).notice).toContain("has ended");
    expect(await page.locator("#timeline li.current").textContent()).toStartWith("delivered");

    // An hour later on the page's clock: not one more read.
    await page.clock.runFor(3_600_000);
    expect((await state()).reads).toBe(3);
    expect(errors).toEqual([]);
    await page.close();
  });

  test("hidden, it reads nothing however long; shown again, it reads at once", async () => {
    const { gateway } = fixture;
    const restaurant = { sub: uniqueId("rest"), role: "restaurant" } as const;
    const { orderId, page, errors, state, shows } = await openRestaurantPage(
      gateway,
      restaurant.sub,
      uniqueId("rider"),
    );
    await setVisibility(page, "hidden");
    expect((await state()).poll).toBe("paused");
    await step(gateway, orderId, "READY", 2, restaurant);
    await page.clock.runFor(600_000);
    expect(await state()).toMatchObject({ status: "ASSIGNED", poll: "paused", reads: 0 });

    await setVisibility(page, "visible");
    await page.clock.runFor(1);
    await shows({ status: "READY", poll: "waiting", reads: 1 });
    expect(errors).toEqual([]);
    await page.close();
  });

  test("the order's record gone (it expires after the order ends) stops the reads, and the page says why", async () => {
    const { gateway, db } = fixture;
    const { orderId, page, errors, state, shows } = await openRestaurantPage(
      gateway,
      uniqueId("rest"),
      uniqueId("rider"),
    );
    await db.del(keys.order(orderId));
    await page.clock.runFor(STATUS_POLL_EVERY_MS);
    await shows({ poll: "stopped", reads: 1 });
    expect((await state()).notice).toContain("404");
    await page.clock.runFor(3_600_000);
    expect(await state()).toMatchObject({ status: "ASSIGNED", reads: 1 });
    expect(errors).toEqual([]);
    await page.close();
  });

  test("refused 429, it reads again no sooner than the Retry-After says (held to a minute)", async () => {
    // A gateway of its own with a small budget per identity: the page's two lookups and the
    // test's reads spend it. Windows are fixed (aligned to multiples of their length): a day's
    // cannot roll over between the test's reads and the page's.
    const strict = await startTestGateway({
      REDIS_URL: fixture.redis.url,
      RATE_LIMIT_REQUESTS: "4",
      RATE_LIMIT_WINDOW_MS: String(86_400_000),
    });
    try {
      const restaurant = { sub: uniqueId("rest"), role: "restaurant" } as const;
      const { orderId, page, errors, state, shows } = await openRestaurantPage(
        strict,
        restaurant.sub,
        uniqueId("rider"),
      );
      let spent = false;
      for (let call = 0; call < 4 && !spent; call += 1)
        spent =
          (await strict.call(`/v1/orders/${orderId}/status`, { as: restaurant })).status === 429;
      expect(spent).toBe(true);

      const refusal = page.waitForResponse((response) => response.url().endsWith("/status"));
      await page.clock.runFor(STATUS_POLL_EVERY_MS);
      const answer = await refusal;
      expect(answer.status()).toBe(429);
      const retryAfterMs = Number(answer.headers()["retry-after"]) * 1000;
      // What is left of the day is past the poll interval and the backoff's first step.
      expect(retryAfterMs).toBeGreaterThan(STATUS_POLL_EVERY_MS);
      await shows({ poll: "waiting", reads: 1 });

      // Hours: the page waits the clients' cap (a minute), no less.
      const waitMs = Math.min(retryAfterMs, RETRY_AFTER_MAX_MS);
      await page.clock.runFor(waitMs - 1);
      expect((await state()).reads).toBe(1);
      await page.clock.runFor(1);
      expect((await state()).reads).toBe(2);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await strict.stop();
    }
  });

  test("while the gateway's Redis is down (503), it reads again after growing waits; back, it shows the newer status", async () => {
    // A gateway on a Redis of its own, to crash and restart on the same port.
    const redis = await startRedis();
    const db = new Redis(redis.url);
    // Unheard while the server is down, each reconnect attempt would print "Unhandled error event".
    db.on("error", () => undefined);
    const gateway = await startTestGateway({ REDIS_URL: redis.url });
    try {
      const riderId = uniqueId("rider");
      const restaurant = uniqueId("rest");
      const { orderId, page, errors, state, shows } = await openRestaurantPage(
        gateway,
        restaurant,
        riderId,
        db,
      );
      const answered: number[] = [];
      page.on("response", (response) => {
        if (response.url().endsWith("/status")) answered.push(response.status());
      });
      await redis.kill();
      // The page clock at each read, moved on a quarter second at a time.
      const readsAt: number[] = [];
      let at = 0;
      while (readsAt.length < 4 && at < 60_000) {
        await page.clock.runFor(250);
        at += 250;
        const { reads } = await state();
        if (reads === readsAt.length) continue;
        readsAt.push(at);
        await shows({ poll: "waiting", reads });
      }
      expect(readsAt).toHaveLength(4);
      expect(answered).toEqual([503, 503, 503, 503]);
      const gaps = readsAt.slice(1).map((read, index) => read - (readsAt[index] ?? 0));
      // On schedule, then each failure's step (5 s doubling) with equal jitter: [step/2, step].
      expect(readsAt[0]).toBe(STATUS_POLL_EVERY_MS);
      gaps.forEach((gap, index) => {
        const stepMs = STATUS_POLL_EVERY_MS * 2 ** index;
        expect({ gap, atLeast: gap >= stepMs / 2 - 250, atMost: gap <= stepMs + 250 }).toEqual({
          gap,
          atLeast: true,
          atMost: true,
        });
      });
      expect((await state()).status).toBe("ASSIGNED");

      // Back (empty: a crash keeps nothing), with the order moved on meanwhile.
      await redis.restart();
      await seedOrder(db, {
        orderId,
        customerId: uniqueId("cust"),
        riderId,
        restaurantId: restaurant,
        status: "READY",
      });
      await waitUntil(
        async () =>
          (
            await gateway.call(`/v1/orders/${orderId}/status`, {
              as: { sub: "ops-1", role: "ops" },
            })
          ).status === 200,
      );
      await page.clock.runFor(STATUS_POLL_BACKOFF.maxMs);
      await shows({ status: "READY", poll: "waiting", reads: readsAt.length + 1 });
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await gateway.stop();
      db.disconnect();
      await redis.stop();
    }
  });
});
