// Failed token checks per client address on a tracking node (a process of its
// own, real Redis): the gateway's limit, answered before the upgrade.
import { beforeAll, describe, expect, test } from "bun:test";
import { seedOrder } from "../test/support/orders";
import { useRedisClient } from "../test/support/redis-connection";
import { testToken, uniqueId } from "../test/support/tokens";
import {
  openWatcher,
  refusalStatus,
  spawnTrackingProcess,
  type TrackingProcess,
} from "../test/support/tracking";

let node: TrackingProcess;

const fixture = useRedisClient({
  stopFirst: async () => {
    await node?.stop();
  },
});

beforeAll(async () => {
  node = await spawnTrackingProcess({
    REDIS_URL: fixture.redis.url,
    AUTH_FAILURE_LIMIT: "5",
    AUTH_FAILURE_WINDOW_MS: "3600000",
    // Behind a balancer: the test speaks for many clients from one loopback address.
    TRACKING_CLIENT_ADDRESS_HEADER: "X-Forwarded-For",
  });
});

/** A token-shaped string no key signed. */
const forged = () =>
  `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: uniqueId("x"), role: "ops" })).toString("base64url")}.${uniqueId("sig")}`;

async function newOrder() {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(fixture.db, { orderId, customerId, riderId: uniqueId("rider") });
  return { customerId, path: `/v1/orders/${orderId}/track` };
}

const from = (address: string) => ({ "x-forwarded-for": `198.51.100.200, ${address}` });
const watch = (path: string, token: string, address: string) =>
  refusalStatus(node.httpUrl, `${path}?access_token=${token}`, from(address));

describe("a flood of forged tokens from one address", () => {
  test("is refused 429 before the signature check past the limit; another address is not", async () => {
    const { path } = await newOrder();
    for (let i = 0; i < 5; i++)
      expect((await watch(path, forged(), "203.0.113.10")).status).toBe(401);
    const refused = await watch(path, forged(), "203.0.113.10");
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("rate_limited");
    const retryAfter = Number(refused.retryAfter);
    expect(retryAfter > 0 && retryAfter <= 3_600).toBe(true);
    // The client's own entries to the left of the balancer's do not move it.
    const spoofed = await refusalStatus(node.httpUrl, `${path}?access_token=${forged()}`, {
      "x-forwarded-for": "203.0.113.99, 203.0.113.10",
    });
    expect(spoofed.status).toBe(429);
    // Another address: its own budget.
    expect((await watch(path, forged(), "203.0.113.11")).status).toBe(401);
    // Both refusals counted apart from the per-token watch budget (an alert's series: FailedAuthFlood).
    expect(await node.metric("edge_tracking_failed_auth_refused_total")).toMatch(/ 2$/m);
  });

  test("a genuine token from a blocked address passes only if this node verified it before the block (the gateway's rule)", async () => {
    const { path, customerId } = await newOrder();
    const known = await testToken(customerId, "customer");
    // Another lifetime: minted in the same second with the same claims it would be the same token.
    const fresh = await testToken(customerId, "customer", undefined, 3_600);
    const headers = from("203.0.113.20");
    const first = await openWatcher(`${node.url}${path}?access_token=${known}`, { headers });
    first.close();
    await first.closed;
    for (let i = 0; i < 6; i++) await watch(path, forged(), "203.0.113.20");
    expect((await watch(path, forged(), "203.0.113.20")).status).toBe(429);

    const again = await openWatcher(`${node.url}${path}?access_token=${known}`, { headers });
    again.close();
    await again.closed;
    // A token not yet verified costs a signature check: refused like a forged one.
    expect((await watch(path, fresh, "203.0.113.20")).status).toBe(429);
    // From another address it is fine.
    const elsewhere = await openWatcher(`${node.url}${path}?access_token=${fresh}`, {
      headers: from("203.0.113.21"),
    });
    elsewhere.close();
    await elsewhere.closed;
  });

  test("expired genuine tokens (an app back from sleep) do not count", async () => {
    const { path, customerId } = await newOrder();
    for (let i = 0; i < 12; i++) {
      const expired = await testToken(customerId, "customer", undefined, -60 - i);
      const answer = await watch(path, expired, "203.0.113.30");
      expect([answer.status, answer.body.error.message]).toEqual([401, "token expired"]);
    }
    expect((await watch(path, forged(), "203.0.113.30")).status).toBe(401);
  });
});
