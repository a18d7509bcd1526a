// `bun bench/gateway/forged-token-flood.ts`: a forged-token flood against one
// gateway process, with the failed-authentication limit effectively off and
// then at its default, in the same run. Prints one JSON line per run.
import { join } from "node:path";
import autocannon from "autocannon";
import { freePort } from "../../test/support/free-port";
import { startRedis } from "../../test/support/redis-server";
import { waitForOk } from "../support/child";
import { cpuSeconds } from "../support/process-stats";

const SECONDS = 8;
// HS256-shaped, exp far ahead, signature that no key made.
const FORGED =
  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4Iiwicm9sZSI6Im9wcyIsImV4cCI6OTk5OTk5OTk5OX0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

const redis = await startRedis();
for (const limit of ["1000000000", "30"]) {
  const port = await freePort();
  const gateway = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "..", "gateway", "main.ts")],
    {
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        JWT_SECRET: "s".repeat(40),
        GATEWAY_PORT: String(port),
        LOG_LEVEL: "silent",
        AUTH_FAILURE_LIMIT: limit,
      },
      stdout: "ignore",
      stderr: "inherit",
    },
  );
  await waitForOk(`http://127.0.0.1:${port}/readyz`);
  const cpuBefore = cpuSeconds(gateway.pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/v1/ops/live?city=london`,
    connections: 50,
    duration: SECONDS,
    headers: { authorization: `Bearer ${FORGED}` },
  });
  const cpu = cpuSeconds(gateway.pid) - cpuBefore;
  console.log(
    JSON.stringify({
      authFailureLimit: Number(limit),
      requestsPerSecond: Math.round(result.requests.average),
      statuses: Object.fromEntries(
        Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count]),
      ),
      gatewayCoreShare: Number((cpu / SECONDS).toFixed(2)),
      gatewayMicrosPerRequest: Math.round((cpu * 1e6) / result.requests.total),
    }),
  );
  gateway.kill();
  await gateway.exited;
}
await redis.stop();
