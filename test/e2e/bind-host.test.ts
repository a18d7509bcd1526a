// Every tier listens where BIND_HOST says, and only on loopback when unset.
// On Linux all of 127.0.0.0/8 is loopback, so 127.0.0.2 is a second local
// address that a listener on 127.0.0.1 does not answer (and vice versa).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer } from "node:net";
import { ConfigError } from "../../core/config/env";
import { readBindHost } from "../../core/config/shared-config";
import { freePort } from "../support/free-port";
import { startTestGateway, type TestGateway } from "../support/gateway";
import { startTestIngest, type TestIngest } from "../support/ingest";
import { type RedisServer, startRedis } from "../support/redis-server";
import { startTestTracking, type TestTrackingNode } from "../support/tracking";

const HOST = "127.0.0.1";
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

/**
 * A listener of the test's own on `host` at `port` (0: one the kernel picks),
 * answering nothing. A tier started at that port on another address while it
 * is held proves the tier does not listen on `host` (nor on every address):
 * its bind would have failed. And nothing else can answer there meanwhile: a
 * port free on one loopback address may be another process's on another.
 */
async function holdPort(host: string, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test("the gateway, the ingest (both ports) and a tracking node listen on BIND_HOST only", async () => {
  const env = { REDIS_URL: redis.url, BIND_HOST: "127.0.0.2" };
  // Each tier's ports held on 127.0.0.1 by the test while the tier binds them on 127.0.0.2.
  const held = [
    await holdPort(HOST),
    await holdPort(HOST),
    await holdPort(HOST),
    await holdPort(HOST),
  ];
  const [gatewayPort, httpPort, grpcPort, trackingPort] = held.map(({ port }) => String(port));
  let gateway: TestGateway | undefined;
  let ingest: TestIngest | undefined;
  let tracking: TestTrackingNode | undefined;
  try {
    gateway = await startTestGateway({ ...env, GATEWAY_PORT: String(gatewayPort) });
    ingest = await startTestIngest({
      ...env,
      INGEST_HTTP_PORT: String(httpPort),
      INGEST_PORT: String(grpcPort),
    });
    tracking = await startTestTracking({ ...env, TRACKING_PORT: String(trackingPort) });
    for (const port of [gatewayPort, httpPort, trackingPort])
      expect(await answers("127.0.0.2", Number(port))).toBe(true);
    // The h2c port: a TCP connect is enough to tell.
    const connected = await Bun.connect({
      hostname: "127.0.0.2",
      port: Number(grpcPort),
      socket: { data() {} },
    });
    connected.end();
  } finally {
    await tracking?.stop();
    await ingest?.stop();
    await gateway?.stop();
    for (const hold of held) await hold.close();
  }
});

test("unset, a tier listens on 127.0.0.1 only", async () => {
  const port = await freePort();
  // Held on 127.0.0.2 by the test while the node binds 127.0.0.1 at the same port.
  const other = await holdPort("127.0.0.2", port);
  try {
    const node = await startTestTracking({ REDIS_URL: redis.url, TRACKING_PORT: String(port) });
    try {
      expect(await answers(HOST, port)).toBe(true);
    } finally {
      await node.stop();
    }
  } finally {
    await other.close();
  }
});
