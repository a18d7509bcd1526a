import { expect, test } from "bun:test";
import pino from "pino";
import { startFreezingProxy } from "../../test/support/freezing-proxy";
import { useRedisClient } from "../../test/support/redis-connection";
import { waitUntil } from "../../test/support/wait";
import { settleWithin } from "../lifecycle/settle-within";
import { connectRedis } from "./client";

const fixture = useRedisClient();

test("close() with a Redis that hangs (QUIT never answered) cuts the connection within its 1 s wait", async () => {
  const proxy = await startFreezingProxy(fixture.redis.port);
  try {
    const connection = await connectRedis(
      { mode: "standalone", url: `redis://127.0.0.1:${proxy.port}` },
      "close-test",
      pino({ level: "silent" }),
    );
    expect(connection.isReady()).toBe(true);
    proxy.freeze();
    // Every tier's drain ends with close(): a drain must not wait on a Redis that hangs.
    expect(
      await settleWithin(
        connection.close().then(() => "closed"),
        5_000,
        "hung",
      ),
    ).toBe("closed");
    await waitUntil(() => !connection.isReady(), 2_000, "the connection cut");
  } finally {
    await proxy.close();
  }
});
