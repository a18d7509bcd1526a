import { launchChromium } from "../../test/support/browser";
import { startDemo } from "../../test/support/demo-process";
import { countSockets, watchOrderChurn } from "../../test/support/live-map-watch";

/** More than the page follows (8), so its choice matters. */
const BUSY_CITY = 12;

async function waitForOrdersOnTheRoad(gatewayUrl: string, token: string, count: number) {
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    const response = await fetch(`${gatewayUrl}/v1/ops/live?city=london`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const view = (await response.json()) as { orders: { riderId?: string }[] };
    if (view.orders.filter((order) => order.riderId).length >= count) return;
    await Bun.sleep(1_000);
  }
  throw new Error(`the demo city never had ${count} orders on the road`);
}

export interface LiveMapChurnResult {
  riders: number;
  seconds: number;
  viewport: { width: number; height: number };
  opens: number;
  closes: number;
  distinctOrders: number;
  ordersStarted: number;
  ordersEnded: number;
}

/**
 * One live map tab on the demo city: how many tracking WebSockets it opens
 * and closes in `seconds`, beside how many orders started (got a rider) or
 * ended in the same window, which is all that should make it open or close
 * one. Counting starts once the city has more orders on the road than the
 * page follows (so it has to choose), and the page has drawn some.
 */
export async function runLiveMapChurn(options: {
  riders: number;
  seconds: number;
  progress: (line: string) => void;
}): Promise<LiveMapChurnResult> {
  const { riders, seconds, progress } = options;
  const viewport = { width: 1280, height: 800 };
  const demo = await startDemo({ DEMO_RIDERS: String(riders) });
  const browser = await launchChromium();
  try {
    progress(`live map: waiting for ${BUSY_CITY} orders on the road`);
    await waitForOrdersOnTheRoad(demo.gatewayUrl, demo.opsToken, BUSY_CITY);
    const page = await browser.newPage({ viewport });
    await page.goto(demo.mapLink);
    await page.waitForFunction(() => Number(document.body.dataset.frames) > 0, undefined, {
      timeout: 60_000,
    });
    progress(`live map: counting sockets for ${seconds} s with ${riders} riders`);
    const counts = countSockets(page);
    const churn = watchOrderChurn(demo.gatewayUrl, demo.opsToken);
    await Bun.sleep(seconds * 1_000);
    const orders = await churn.stop();
    return {
      riders,
      seconds,
      viewport,
      opens: counts.opens,
      closes: counts.closes,
      distinctOrders: new Set(counts.opened).size,
      ordersStarted: orders.started,
      ordersEnded: orders.ended,
    };
  } finally {
    await browser.close();
    await demo.stop();
  }
}
