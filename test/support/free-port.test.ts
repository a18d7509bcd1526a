import { afterEach, expect, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { Redis } from "ioredis";
import { canListen } from "../../demo/ports";
import { freePort, freePortRun, PortTakenError, retryIfPortTaken } from "./free-port";
import { startRedis, startRedisCluster } from "./redis-server";
import { spawnTrackingProcess } from "./tracking";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Another process's listener on `port`, as it binds between a pick and its user's bind. */
async function hold(port: number): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return server;
}

test("picks never repeat while none is bound: one by one, side by side, and the runs' ports", async () => {
  const picked: number[] = [];
  // A whole suite's worth; at random among ~16,000 ports, a hundred repeats were expected.
  for (let round = 0; round < 40; round++) {
    for (let n = 0; n < 40; n++) picked.push(await freePort());
    picked.push(...(await Promise.all(Array.from({ length: 10 }, () => freePort()))));
    const run = await freePortRun(3);
    picked.push(run, run + 1, run + 2);
  }
  expect(picked.length).toBe(40 * 53);
  expect(new Set(picked).size).toBe(picked.length);
});

test("a redis-server whose port another process bound first starts again on a fresh one", async () => {
  const tried: number[] = [];
  const redis = await retryIfPortTaken(async () => {
    const port = await freePort();
    tried.push(port);
    if (tried.length === 1) await hold(port);
    return startRedis(port);
  });
  cleanups.push(() => redis.stop());
  expect(tried.length).toBe(2);
  expect(redis.port).toBe(tried[1] as number);
  const client = new Redis(redis.url);
  cleanups.push(() => client.disconnect());
  expect(await client.ping()).toBe("PONG");
});

test("any other start failure is the caller's: thrown at once, not retried", async () => {
  let calls = 0;
  const failing = retryIfPortTaken(async () => {
    calls++;
    throw new Error("bad config");
  });
  expect(failing).rejects.toThrow("bad config");
  await failing.catch(() => undefined);
  expect(calls).toBe(1);
});

test("a tracking process on a port another process holds fails at once with PortTakenError, not after a 10 s wait", async () => {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const port = await freePort();
  await hold(port);
  const started = spawnTrackingProcess({ REDIS_URL: redis.url, TRACKING_PORT: String(port) });
  const error = await started.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(PortTakenError);
  expect((error as PortTakenError).port).toBe(port);
}, 8_000);

test("each cluster node's bus port is a free port of its own, bound by the node, not the unchecked port + 10000", async () => {
  const cluster = await startRedisCluster(3);
  cleanups.push(() => cluster.stop());
  const client = new Redis(cluster.nodes[0] as { host: string; port: number });
  cleanups.push(() => client.disconnect());
  const listing = (await client.cluster("NODES")) as string;
  const addresses = [...listing.matchAll(/127\.0\.0\.1:(\d+)@(\d+)/g)].map(([, port, bus]) => ({
    port: Number(port),
    bus: Number(bus),
  }));
  expect(addresses.map(({ port }) => port).sort()).toEqual(
    cluster.nodes.map(({ port }) => port).sort(),
  );
  for (const { port, bus } of addresses) {
    expect(bus).not.toBe(port + 10_000);
    expect(await canListen(bus)).toBe(false);
  }
}, 30_000);
