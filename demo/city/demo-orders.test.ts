import { expect, setSystemTime, test } from "bun:test";
import pino from "pino";
import { useGatewayWithUpstream } from "../../test/support/gateway";
import { TEST_JWT_SECRET } from "../../test/support/tokens";
import { startDemoOrders } from "./demo-orders";

const fixture = useGatewayWithUpstream();
const DAY_MS = 86_400_000;

test("the demo's dispatcher still works a day later: an order nobody took is cancelled with a token minted then, not the day-old first one", async () => {
  const orders = await startDemoOrders({
    gatewayUrl: fixture.gateway.url,
    jwtSecret: TEST_JWT_SECRET,
    everyMs: 100,
    logger: pino({ level: "silent" }),
  });
  try {
    const first = orders.firstOrder;
    if (!first) throw new Error("the demo placed no first order");
    // No rider is near: the order waits. A day and a minute on (the clock both the demo's
    // tokens and the gateway's checks read), it is long past the demo's give-up time.
    setSystemTime(new Date(Date.now() + DAY_MS + 60_000));
    // Each tick redispatches the waiting orders, then places one: two more orders mean a
    // whole tick ran after the jump. (Date is frozen now: count turns, not milliseconds.)
    const placed = fixture.upstream.ordersCreated.length;
    for (let turn = 0; turn < 500 && fixture.upstream.ordersCreated.length < placed + 2; turn++)
      await Bun.sleep(10);
    expect(fixture.upstream.ordersCreated.length).toBeGreaterThanOrEqual(placed + 2);
    // A tick under way at the jump may have read the order before it; the next one cancels it,
    // and its answer may still be on its way: read until it shows (a 401 would keep it CONFIRMED).
    let status = "";
    for (let turn = 0; turn < 500 && status !== "CANCELLED"; turn++) {
      const read = await fixture.gateway.call(`/v1/orders/${first.id}/status`, {
        as: { sub: "ops-1", role: "ops" },
      });
      status = ((await read.json()) as { status: string }).status;
      if (status !== "CANCELLED") await Bun.sleep(10);
    }
    expect(status).toBe("CANCELLED");
  } finally {
    setSystemTime();
    orders.stop();
  }
});
