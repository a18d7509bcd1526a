import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { connect } from "node:net";
import { startFreezingProxy } from "../../test/support/freezing-proxy";
import { type IngestProcess, spawnIngest } from "../../test/support/ingest-process";
import { errorCodeOf, FRAME, openRawH2, type RawH2Connection } from "../../test/support/raw-h2";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { openStockRider, type StockRider } from "../../test/support/stock-rider";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";

// Short limits, so each test takes a second or two; the PING answer gets
// longer, since a client in this busy test process may be slow to send it.
const LIMITS = {
  INGEST_PREFACE_TIMEOUT_MS: "300",
  INGEST_IDLE_TIMEOUT_MS: "600",
  INGEST_KEEPALIVE_MS: "300",
  INGEST_KEEPALIVE_TIMEOUT_MS: "1500",
};
const NO_ERROR = 0;
const hits = (node: IngestProcess, limit: string) =>
  node.metric("edge_ingest_limit_hits_total", { limit });

let redis: RedisServer;
let ingest: IngestProcess;

beforeAll(async () => {
  redis = await startRedis();
  ingest = await spawnIngest({ REDIS_URL: redis.url, ...LIMITS });
});

afterAll(async () => {
  await ingest?.stop();
  await redis?.stop();
});

async function riderToken() {
  return testToken(uniqueId("rider"), "rider", "london");
}

describe("h2c connection timeouts", () => {
  test("a connection that never sends the HTTP/2 preface is closed after the preface timeout", async () => {
    const before = await hits(ingest, "preface_timeout");
    const raw = await openRawH2(ingest.grpcPort);
    const closedAfterMs = await raw.closed;
    expect(closedAfterMs).toBeGreaterThanOrEqual(250);
    expect(await hits(ingest, "preface_timeout")).toBe(before + 1);
  });

  test("bytes that are not HTTP/2 (an HTTP/1.1 request) end the connection at once with GOAWAY", async () => {
    const before = await hits(ingest, "not_http2");
    const timeoutsBefore = await hits(ingest, "preface_timeout");
    const raw = await openRawH2(ingest.grpcPort);
    raw.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await raw.closed;
    const goaway = await raw.frame((f) => f.type === FRAME.GOAWAY);
    expect(errorCodeOf(goaway)).toBe(1); // PROTOCOL_ERROR
    expect(await hits(ingest, "not_http2")).toBe(before + 1);
    // Closed by the bytes, not by the preface deadline.
    expect(await hits(ingest, "preface_timeout")).toBe(timeoutsBefore);
  });

  test("a connection with no open stream is told GOAWAY(NO_ERROR) and closed after the idle timeout", async () => {
    const before = await hits(ingest, "idle_timeout");
    const raw = await openRawH2(ingest.grpcPort);
    raw.handshake();
    const closedAfterMs = await raw.closed;
    expect(closedAfterMs).toBeGreaterThanOrEqual(550);
    expect(errorCodeOf(await raw.frame((f) => f.type === FRAME.GOAWAY))).toBe(NO_ERROR);
    expect(await hits(ingest, "idle_timeout")).toBe(before + 1);
  });

  test("the descriptor of a cut connection is released even when the client never closes its side", async () => {
    const fds = () => readdirSync(`/proc/${ingest.child.pid}/fd`).length;
    const before = await fds();
    // Clients that ignore the server's FIN: half-open from their side, forever.
    const stubborn = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const socket = connect({ port: ingest.grpcPort, host: "127.0.0.1", allowHalfOpen: true });
        socket.on("error", () => undefined);
        await new Promise((resolve) => socket.once("connect", resolve));
        return socket;
      }),
    );
    await waitUntil(() => fds() >= before + 40, 5_000, "the server to hold them");
    // Past the preface timeout every one is cut, and its descriptor is gone.
    await waitUntil(() => fds() <= before + 2, 5_000, "the descriptors to be freed");
    expect(stubborn.every((socket) => !socket.destroyed)).toBe(true);
    for (const socket of stubborn) socket.destroy();
  });

  test("a phone that vanished without a FIN is noticed by keep-alive PINGs; its stream ends", async () => {
    const proxy = await startFreezingProxy(ingest.grpcPort);
    const token = await riderToken();
    const streamsBefore = await ingest.metric("edge_ingest_streams");
    const vanishing = openStockRider(`127.0.0.1:${proxy.port}`, token);
    await vanishing.ping();
    expect(await ingest.metric("edge_ingest_streams")).toBe(streamsBefore + 1);
    const before = await hits(ingest, "keepalive_timeout");
    proxy.freeze();
    await waitUntil(
      async () => (await ingest.metric("edge_ingest_streams")) === streamsBefore,
      10_000,
      "the vanished rider's stream to end",
    );
    expect(await hits(ingest, "keepalive_timeout")).toBe(before + 1);
    vanishing.close();
    await proxy.close();
    const again = openStockRider(`127.0.0.1:${ingest.grpcPort}`, token);
    await again.ping();
    again.close();
  });

  test("a phone that comes back on a new connection before its old one is noticed dead takes over at once", async () => {
    const proxy = await startFreezingProxy(ingest.grpcPort);
    const token = await riderToken();
    const superseded = await ingest.metric("edge_ingest_streams_superseded_total");
    const vanishing = openStockRider(`127.0.0.1:${proxy.port}`, token);
    await vanishing.ping();
    proxy.freeze();
    // The app restarted: its new stream supersedes the frozen one without waiting for keep-alive.
    const back = openStockRider(`127.0.0.1:${ingest.grpcPort}`, token);
    await back.ping();
    expect(await ingest.metric("edge_ingest_streams_superseded_total")).toBe(superseded + 1);
    await back.ping();
    vanishing.close();
    back.close();
    await proxy.close();
  });

  test("a rider that answers PINGs keeps its quiet stream past several keep-alive rounds", async () => {
    const rider = openStockRider(`127.0.0.1:${ingest.grpcPort}`, await riderToken());
    await rider.ping();
    const before = await hits(ingest, "keepalive_timeout");
    // Silent for ten keep-alive periods: PINGs go out and come back.
    await Bun.sleep(3_000);
    await rider.ping();
    expect(await hits(ingest, "keepalive_timeout")).toBe(before);
    rider.close();
  });
});

describe("the connection cap", () => {
  const CAP = 6;
  let capped: IngestProcess;

  beforeAll(async () => {
    // Long timeouts: here only the cap decides who goes.
    capped = await spawnIngest({ REDIS_URL: redis.url, INGEST_MAX_CONNECTIONS: String(CAP) });
  });

  afterAll(async () => {
    await capped?.stop();
  });

  test("idle connections filling the cap make room for riders, oldest first; with none idle a new one is refused", async () => {
    const address = `127.0.0.1:${capped.grpcPort}`;
    const riders: StockRider[] = [openStockRider(address, await riderToken())];
    await riders[0]?.ping();
    const idle: RawH2Connection[] = [];
    for (let i = 0; i < CAP - 1; i++) {
      const raw = await openRawH2(capped.grpcPort);
      raw.handshake();
      await raw.frame((f) => f.type === FRAME.SETTINGS);
      idle.push(raw);
    }
    await waitUntil(async () => (await capped.metric("edge_ingest_connections")) === CAP);

    // The cap is full of idlers: each new rider is served, and the oldest idler goes.
    for (let i = 0; i < CAP - 1; i++) {
      const rider = openStockRider(address, await riderToken());
      riders.push(rider);
      await rider.ping();
      await idle[i]?.closed;
      // Only the oldest idler went.
      expect(idle.slice(i + 1).every((raw) => !raw.socket.destroyed)).toBe(true);
    }
    expect(await hits(capped, "connection_evicted")).toBe(CAP - 1);
    // Riders' connections are never the ones evicted.
    for (const rider of riders) await rider.ping();

    // Every connection carries a rider's call: a newcomer is closed at once.
    const late = await openRawH2(capped.grpcPort);
    late.handshake();
    await late.closed;
    expect(await hits(capped, "connection_refused")).toBe(1);
    expect(capped.logs.filter((l) => l.includes("h2c connection cap reached"))).toHaveLength(1);
    for (const rider of riders) await rider.ping();
    for (const rider of riders) rider.close();
  });
});
