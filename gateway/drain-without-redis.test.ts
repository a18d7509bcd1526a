// A gateway's SIGTERM drain while its Redis hangs (SIGSTOP), with a request
// under way: real gateway and redis-server processes.
import { expect, test } from "bun:test";
import { startGatewayProcess } from "../test/support/gateway-process";
import { startRedis } from "../test/support/redis-server";
import { sendRequestLeftInFlight } from "../test/support/request-in-flight";
import { testToken, uniqueId } from "../test/support/tokens";
import { gatewayRequestsWaitMs } from "./config";

test("Redis hangs with a status read under way: the drain gives it UPSTREAM_TIMEOUT_MS + 1 s, then closes it and exits 0", async () => {
  const redis = await startRedis();
  const upstreamTimeoutMs = 1_000;
  const gateway = await startGatewayProcess({
    REDIS_URL: redis.url,
    UPSTREAM_TIMEOUT_MS: String(upstreamTimeoutMs),
  });
  process.kill(redis.pid, "SIGSTOP");
  try {
    const token = await testToken(uniqueId("cust"), "customer");
    // Asked after the freeze: it waits on Redis, which gives no deadline.
    const request = await sendRequestLeftInFlight(Number(new URL(gateway.url).port), [
      `GET /v1/orders/${uniqueId("order")}/status HTTP/1.1`,
      `Authorization: Bearer ${token}`,
    ]);
    const started = Date.now();
    gateway.child.kill("SIGTERM");
    // Bun's own stop waits for every request: this one held the drain until Bun's 10 s
    // idle timeout cut its connection (exit 0 after ~12 s; the 15 s cut with a longer one).
    expect(await gateway.child.exited).toBe(0);
    expect(await request.outcome).toBe("closed unanswered");
    const tookMs = Date.now() - started;
    // The request's whole wait (what a normal one with its upstream call needs), then QUIT's 1 s.
    const waitMs = gatewayRequestsWaitMs({ upstreamTimeoutMs });
    expect(tookMs).toBeGreaterThanOrEqual(waitMs - 50);
    expect(tookMs).toBeLessThan(waitMs + 1_000 + 3_000);
  } finally {
    process.kill(redis.pid, "SIGCONT");
    gateway.child.kill("SIGKILL");
    await redis.stop();
  }
}, 25_000);
