// Every tier listens where BIND_HOST says, and only on loopback when unset.
// On Linux all of 127.0.0.0/8 is loopback, so 127.0.0.2 is a second local
// address that a listener on 127.0.0.1 does not answer (and vice versa).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ConfigError } from "../../core/config/env";
import { readBindHost } from "../../core/config/shared-config";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { startTestIngest, type TestIngest } from "../support/ingest";
import { freePort, type RedisServer, startRedis } from "../support/redis-server";
import { startTestTracking, type TestTrackingNode } from "../support/tracking";

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function answers(host: string, port: number): Promise<boolean> {
  const response = await fetch(`http://${host}:${port}/healthz`).catch(() => undefined);
  return response?.ok === true;
}

test("BIND_HOST must be an address or a host name; unset it is loopback", () => {
  expect(readBindHost({})).toBe("127.0.0.1");
  expect(readBindHost({ BIND_HOST: "0.0.0.0" })).toBe("0.0.0.0");
  expect(readBindHost({ BIND_HOST: "::" })).toBe("::");
  expect(() => readBindHost({ BIND_HOST: "0.0.0.0:80" })).toThrow(ConfigError);
  expect(() => readBindHost({ BIND_HOST: "a host" })).toThrow(ConfigError);
});

test("the gateway, the ingest (both ports) and a tracking node listen on BIND_HOST only", async () => {
  const env = { REDIS_URL: redis.url, BIND_HOST: "127.0.0.2" };
  let gateway: TestGateway | undefined;
  let ingest: TestIngest | undefined;
  let tracking: TestTrackingNode | undefined;
  try {
    gateway = await startTestGateway(env);
    ingest = await startTestIngest(env);
    tracking = await startTestTracking(env);
    const ports = [
      Number(new URL(gateway.url).port),
      ingest.app.httpPort,
      Number(new URL(tracking.httpUrl).port),
    ];
    for (const port of ports) {
      expect(await answers("127.0.0.2", port)).toBe(true);
      expect(await answers("127.0.0.1", port)).toBe(false);
    }
    // The h2c port: a TCP connect is enough to tell.
    const connects = async (host: string) =>
      Bun.connect({ hostname: host, port: ingest?.app.grpcPort ?? 0, socket: { data() {} } }).then(
        (socket) => {
          socket.end();
          return true;
        },
        () => false,
      );
    expect(await connects("127.0.0.2")).toBe(true);
    expect(await connects("127.0.0.1")).toBe(false);
  } finally {
    await tracking?.stop();
    await ingest?.stop();
    await gateway?.stop();
  }
});

test("unset, a tier is not reachable on any other address of the host", async () => {
  const port = await freePort();
  const node = await startTestTracking({ REDIS_URL: redis.url, TRACKING_PORT: String(port) });
  try {
    expect(await answers("127.0.0.1", port)).toBe(true);
    expect(await answers("127.0.0.2", port)).toBe(false);
  } finally {
    await node.stop();
  }
});
