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
    // The connection events' debug lines are part of what is tested.
    LOG_LEVEL: "debug",
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

test("every connection opened is counted; every limit hit and refused call is logged at debug with its reason, one line per count", async () => {
  const lines = () => ingest.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
  const opened = await ingest.metric("edge_ingest_connections_opened_total");
  const prefaceTimeouts = await ingest.metric("edge_ingest_limit_hits_total", {
    limit: "preface_timeout",
  });
  // A connection that never sends the HTTP/2 preface is cut after INGEST_PREFACE_TIMEOUT_MS.
  const silent = await openRawH2(ingest.grpcPort);
  await waitUntil(
    async () =>
      (await ingest.metric("edge_ingest_limit_hits_total", { limit: "preface_timeout" })) >
      prefaceTimeouts,
    5_000,
    "the preface timeout",
  );
  silent.destroy();
  // A call with a forged token is refused before any ping is read.
  const session = http2.connect(ingest.grpcUrl);
  session.on("error", () => undefined);
  await rawGrpcCall(
    session,
    "/delivery.tracking.v1.LocationIngestService/UploadPings",
    "not-a-token",
    grpcFrame(new Uint8Array(0)),
  ).catch(() => undefined);
  session.close();
  expect(await ingest.metric("edge_ingest_connections_opened_total")).toBeGreaterThanOrEqual(
    opened + 2,
  );

  const hitLines = () => lines().filter((line) => line.msg === "transport limit hit");
  const cut = () =>
    hitLines().filter((line) => line.limit === "preface_timeout" && typeof line.peer === "string");
  await waitUntil(() => cut().length > prefaceTimeouts, 5_000, "the preface timeout logged");
  expect(lines()).toContainEqual(
    expect.objectContaining({ level: 20, msg: "rider call refused", code: "unauthenticated" }),
  );
  const peer = cut().at(-1)?.peer;
  expect(lines()).toContainEqual(expect.objectContaining({ msg: "h2c connection opened", peer }));
  expect(lines()).toContainEqual(expect.objectContaining({ msg: "h2c connection closed", peer }));
  // Whatever hit a limit in this file (the attacks above too): each count has its line.
  const counted = async () => {
    for (const limit of new Set(hitLines().map((line) => String(line.limit))))
      if (
        hitLines().filter((line) => line.limit === limit).length !==
        (await ingest.metric("edge_ingest_limit_hits_total", { limit }))
      )
        return false;
    return (
      lines().filter((line) => line.msg === "h2c connection opened").length ===
      (await ingest.metric("edge_ingest_connections_opened_total"))
    );
  };
  await waitUntil(counted, 5_000, "a debug line for each count");
});
