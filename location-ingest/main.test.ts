import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack } from "../test/support/ingest";
import { spawnIngest } from "../test/support/ingest-process";
import { openPingStream } from "../test/support/ping-stream";
import { type RedisServer, startRedis } from "../test/support/redis-server";
import { TEST_JWT_SECRET, testToken, uniqueId } from "../test/support/tokens";

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

test("SIGTERM: open streams get Reconnect and end cleanly, the process exits 0", async () => {
  const { child, grpcPort } = await spawnIngest({
    REDIS_URL: redis.url,
    DRAIN_RECONNECT_MS: "750",
  });
  const client = createClient(
    LocationIngestService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}` }),
  );
  const streams = await Promise.all(
    [1, 2, 3].map(async () =>
      openPingStream(client, await testToken(uniqueId("rider"), "rider", "london")),
    ),
  );
  const [ping] = pingTrack(1);
  if (!ping) throw new Error("unreachable");
  for (const stream of streams) {
    stream.send(ping);
    expect((await stream.next()).event.case).toBe("ack");
  }

  child.kill("SIGTERM");
  for (const stream of streams) {
    const response = await stream.next();
    expect(response.event.case).toBe("reconnect");
    expect(response.event.case === "reconnect" && response.event.value.afterMs).toBe(750);
    // The call ends with OK status, not an error.
    expect(await stream.ended).toBeUndefined();
  }
  expect(await child.exited).toBe(0);
});

/** Starts the ingest with one setting added; it must exit 2 at start, printing `message`. */
function expectStartRefused(setting: Record<string, string>, message: string): void {
  const result = Bun.spawnSync([process.execPath, join(import.meta.dir, "main.ts")], {
    env: { PATH: process.env.PATH, REDIS_URL: redis.url, JWT_SECRET: TEST_JWT_SECRET, ...setting },
  });
  expect(result.exitCode).toBe(2);
  expect(result.stdout.toString()).toContain(message);
}

test("a bad setting stops the process at start (exit 2) with a message naming the variable", () => {
  expectStartRefused({ INGEST_PORT: "eighty" }, "INGEST_PORT: must be an integer");
});

test("DRAIN_RECONNECT_MS=0 stops the process at start (exit 2) naming the variable", () => {
  expectStartRefused(
    { DRAIN_RECONNECT_MS: "0" },
    "DRAIN_RECONNECT_MS: must be between 1 and 60000",
  );
});
