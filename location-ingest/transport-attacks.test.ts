import { afterAll, beforeAll, expect, test } from "bun:test";
import http2 from "node:http2";
import { connect } from "node:net";
import { type IngestProcess, spawnIngest } from "../test/support/ingest-process";
import { grpcFrame, rawGrpcCall } from "../test/support/raw-grpc";
import { openRawH2, type RawH2Connection } from "../test/support/raw-h2";
import { type RedisServer, startRedis } from "../test/support/redis-server";
import { openStockRider } from "../test/support/stock-rider";
import { testToken, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

const CAP = 100;
let redis: RedisServer;
let ingest: IngestProcess;

beforeAll(async () => {
  redis = await startRedis();
  ingest = await spawnIngest({
    REDIS_URL: redis.url,
    INGEST_MAX_CONNECTIONS: String(CAP),
    INGEST_PREFACE_TIMEOUT_MS: "500",
    INGEST_IDLE_TIMEOUT_MS: "1000",
    INGEST_MESSAGE_TIMEOUT_MS: "500",
  });
});

afterAll(async () => {
  await ingest?.stop();
  await redis?.stop();
});

/** Every attack of the transport issue at once, each bounded; resolves when all are done. */
async function attack(port: number): Promise<void> {
  const url = `http://127.0.0.1:${port}`;
  const path = "/delivery.tracking.v1.LocationIngestService";
  const held: RawH2Connection[] = [];
  // Idle sockets, twice the cap: half never send the preface, half stop after it.
  for (let i = 0; i < 2 * CAP; i++) {
    const raw = await openRawH2(port);
    if (i % 2) raw.handshake();
    held.push(raw);
  }
  // HTTP/1.1 requests on the h2c port.
  const http1 = Array.from(
    { length: 20 },
    () =>
      new Promise<void>((resolve) => {
        const socket = connect(port, "127.0.0.1", () =>
          socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        socket.on("error", () => undefined);
        socket.resume();
        socket.once("close", () => resolve());
      }),
  );
  // Lying length prefixes and half-sent frames from a rider token, and without one.
  const session = http2.connect(url);
  session.on("error", () => undefined);
  const attacker = await testToken(uniqueId("attacker"), "rider", "london");
  const frames = Array.from({ length: 20 }, (_, i) =>
    rawGrpcCall(
      session,
      `${path}/${i % 2 ? "StreamPings" : "UploadPings"}`,
      i % 4 < 2 ? attacker : "not-a-token",
      i % 3 ? grpcFrame(new Uint8Array(10), 100) : grpcFrame(new Uint8Array(20)).subarray(0, 3),
      { end: false },
    ).catch(() => undefined),
  );
  await Promise.all([...http1, ...frames]);
  session.close();
  for (const raw of held) raw.destroy();
}

test("a stock grpc-js rider keeps being acked while idle sockets, HTTP/1.1 bytes, lying prefixes and half frames hit the h2c port", async () => {
  const rider = openStockRider(
    `127.0.0.1:${ingest.grpcPort}`,
    await testToken(uniqueId("rider"), "rider", "london"),
  );
  await rider.ping();
  let attacking = true;
  const attacks = attack(ingest.grpcPort).finally(() => {
    attacking = false;
  });
  let acked = 0;
  while (attacking) {
    await rider.ping(3_000);
    acked += 1;
    await Bun.sleep(20);
  }
  await attacks;
  expect(acked).toBeGreaterThan(0);
  const hits = (limit: string) => ingest.metric("edge_ingest_limit_hits_total", { limit });
  expect(await hits("connection_evicted")).toBeGreaterThanOrEqual(CAP);
  expect(await hits("connection_refused")).toBe(0);
  // Not all 20: under CPU contention the cap may evict an HTTP/1.1 socket as idle before its bytes are read.
  expect(await hits("not_http2")).toBeGreaterThan(0);
  expect(await hits("message_timeout")).toBeGreaterThan(0);
  // Once the attackers are gone, only the rider's connection is left.
  await waitUntil(async () => (await ingest.metric("edge_ingest_connections")) === 1, 5_000);
  await rider.ping();
  rider.close();
});
