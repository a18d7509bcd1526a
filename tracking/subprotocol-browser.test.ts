import { beforeAll, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { launchChromium } from "../test/support/browser";
import { seedOrder } from "../test/support/orders";
import { useRedisClient } from "../test/support/redis-connection";
import { testToken, uniqueId } from "../test/support/tokens";
import { startTestTracking, type TestTrackingNode } from "../test/support/tracking";

// What a browser app gets for each way of offering subprotocols, in Debian's
// Chromium: the rule app developers are told (core/protocol/tracking-protocol.ts).
let node: TestTrackingNode;
let browser: Browser;

const fixture = useRedisClient({
  stopFirst: async () => {
    await browser?.close();
    await node?.stop();
  },
});

beforeAll(async () => {
  node = await startTestTracking({ REDIS_URL: fixture.redis.url });
  browser = await launchChromium();
});

interface Outcome {
  opened: boolean;
  protocol: string;
  firstFrame?: "text" | "binary";
  closeCode?: number;
}

test("Chromium: a frame subprotocol beside bearer is selected; bearer alone is refused; no offer gets JSON", async () => {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(fixture.db, { orderId, customerId, riderId: uniqueId("rider") });
  const token = await testToken(customerId, "customer");
  const url = `${node.url}/v1/orders/${orderId}/track`;
  const page = await browser.newPage();
  const connect = (target: string, protocols: string[]) =>
    page.evaluate(
      ({ target, protocols }) =>
        new Promise<Outcome>((resolve) => {
          const socket = new WebSocket(target, protocols);
          const outcome: Outcome = { opened: false, protocol: "" };
          socket.onopen = () => {
            outcome.opened = true;
            outcome.protocol = socket.protocol;
          };
          socket.onmessage = (message) => {
            outcome.firstFrame = typeof message.data === "string" ? "text" : "binary";
            socket.close();
          };
          socket.onclose = (event) => {
            outcome.closeCode = event.code;
            resolve(outcome);
          };
        }),
      { target, protocols },
    );

  expect(await connect(url, ["tracking.v2.json", `bearer.${token}`])).toEqual({
    opened: true,
    protocol: "tracking.v2.json",
    firstFrame: "text",
    closeCode: 1005,
  });
  expect(await connect(url, [`bearer.${token}`, "tracking.v1.proto"])).toEqual({
    opened: true,
    protocol: "tracking.v1.proto",
    firstFrame: "binary",
    closeCode: 1005,
  });
  expect(await connect(`${url}?access_token=${token}`, [])).toEqual({
    opened: true,
    protocol: "",
    firstFrame: "text",
    closeCode: 1005,
  });
  // The server refuses it (400) rather than echo the token; the browser sees
  // the handshake fail (1006), as it would for a 101 naming none of its offers.
  expect(await connect(url, [`bearer.${token}`])).toEqual({
    opened: false,
    protocol: "",
    closeCode: 1006,
  });
  await page.close();
}, 30_000);
