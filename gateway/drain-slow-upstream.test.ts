// A gateway's SIGTERM drain with a normal request under way whose upstream
// is slow: real gateway and redis-server processes, the test upstream.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startGatewayProcess } from "../test/support/gateway-process";
import { type RedisServer, startRedis } from "../test/support/redis-server";
import { testToken, uniqueId } from "../test/support/tokens";
import { startTestUpstream, type TestUpstream } from "../test/support/upstream";
import { waitUntil } from "../test/support/wait";
import { gatewayRequestsWaitMs } from "./config";

const UPSTREAM_TIMEOUT_MS = 2_000;
/** Well inside the drain's wait for requests (UPSTREAM_TIMEOUT_MS + 1 s), outside any quick cut. */
const UPSTREAM_DELAY_MS = 1_500;

let redis: RedisServer;
let upstream: TestUpstream;

beforeAll(async () => {
  redis = await startRedis();
  upstream = startTestUpstream();
});

afterAll(async () => {
  await upstream?.stop();
  await redis?.stop();
});

test("SIGTERM with a menu read waiting on a slow upstream: it is answered whole (200), then the gateway exits 0", async () => {
  const gateway = await startGatewayProcess({
    REDIS_URL: redis.url,
    SEARCH_SERVICE_URL: upstream.url,
    ORDER_SERVICE_URL: upstream.url,
    UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
  });
  try {
    const menuPath = "/restaurants/ldn-curry/menu";
    // What the service answers, asked straight: the gateway passes it on unchanged.
    const expected = await (await fetch(`${upstream.url}${menuPath}`)).json();
    upstream.controls.delayMs = UPSTREAM_DELAY_MS;
    const callsBefore = upstream.calls.length;
    const token = await testToken(uniqueId("cust"), "customer");
    const answer = fetch(`${gateway.url}/v1${menuPath}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    // The gateway has made its upstream call: the request is under way when the drain starts.
    await waitUntil(() => upstream.calls.length > callsBefore, 5_000, "the upstream call");
    const started = Date.now();
    gateway.child.kill("SIGTERM");
    const response = await answer;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(expected);
    expect(await gateway.child.exited).toBe(0);
    // Within the requests' wait and QUIT's second (and some slack): the drain's own time.
    const waitMs = gatewayRequestsWaitMs({ upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS });
    expect(Date.now() - started).toBeLessThan(waitMs + 1_000 + 1_500);
  } finally {
    upstream.controls.delayMs = 0;
    gateway.child.kill("SIGKILL");
  }
}, 20_000);
