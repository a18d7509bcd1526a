// The HTTP/1.1 port's connection guard attacked from 127.0.0.1, against a
// real ingest process: idle sockets, slowloris heads, a cap full of riders.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { type IngestProcess, spawnIngest } from "../../test/support/ingest-process";
import { PICKUP } from "../../test/support/positions";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";

const CAP = 6;
const SEND_PING = "/delivery.tracking.v1.LocationIngestService/SendPing";
const hits = (node: IngestProcess, limit: string) =>
  node.metric("edge_ingest_limit_hits_total", { limit });

let redis: RedisServer;
/** Only the cap decides here (default timeouts). */
let ingest: IngestProcess;
/** Short deadlines, no cap in reach; logs at debug. */
let timed: IngestProcess;

beforeAll(async () => {
  redis = await startRedis();
  [ingest, timed] = await Promise.all([
    spawnIngest({ REDIS_URL: redis.url, INGEST_HTTP_MAX_CONNECTIONS: String(CAP) }),
    spawnIngest({
      REDIS_URL: redis.url,
      INGEST_HTTP_HEAD_TIMEOUT_MS: "400",
      INGEST_HTTP_IDLE_TIMEOUT_S: "1",
      LOG_LEVEL: "debug",
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([ingest?.stop(), timed?.stop()]);
  await redis?.stop();
});

interface RawClient {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
}

async function openRaw(port: number): Promise<RawClient> {
  const socket = connect(port, "127.0.0.1");
  let received = "";
  let isClosed = false;
  socket.on("data", (chunk) => {
    received += chunk.toString();
  });
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) =>
    socket.once("close", () => {
      isClosed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, received: () => received, closed, isClosed: () => isClosed };
}

/** The process's TCP sockets on 127.0.0.1 (/proc/net/tcp, matched by its socket inodes). */
function loopbackSockets(node: IngestProcess) {
  const pid = node.child.pid;
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed meanwhile
    }
  }
  const port = (hex: string | undefined) => Number.parseInt(hex?.split(":")[1] ?? "", 16);
  return (
    readFileSync(`/proc/${pid}/net/tcp`, "utf8")
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      // local_address is field 1 (hex ip:port), rem_address 2, st 3 (0A LISTEN, 01 ESTABLISHED), inode 9.
      .filter((f) => inodes.has(f[9] ?? "") && f[1]?.startsWith("0100007F:"))
      .map((f) => ({ localPort: port(f[1]), remotePort: port(f[2]), listening: f[3] === "0A" }))
  );
}

/**
 * This process's connection from `localPort` to `remotePort` as the kernel
 * sees it (/proc/net/tcp): its state (hex, 07 closed) and the bytes not yet
 * acknowledged by the peer and not yet read; undefined once it is gone.
 */
function tcpConnection(localPort: number, remotePort: number) {
  const hexPort = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const fields = readFileSync("/proc/self/net/tcp", "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(hexPort(localPort)) && f[2]?.endsWith(hexPort(remotePort)));
  if (!fields) return undefined;
  // st is field 3, tx_queue:rx_queue field 4 (hex).
  const [unacked = "0", unread = "0"] = fields[4]?.split(":") ?? [];
  return {
    state: fields[3],
    unacked: Number.parseInt(unacked, 16),
    unread: Number.parseInt(unread, 16),
  };
}

/** The loopback port the HTTP server behind the front listens on (not a public port). */
function innerPort(node: IngestProcess): number {
  const ports = loopbackSockets(node)
    .filter((s) => s.listening && s.localPort !== node.httpPort && s.localPort !== node.grpcPort)
    .map((s) => s.localPort);
  if (ports.length !== 1) throw new Error(`expected one inner port, found ${ports.join(", ")}`);
  return ports[0] as number;
}

/** The ingest's open descriptors. */
const descriptors = () => readdirSync(`/proc/${ingest.child.pid}/fd`).length;

/**
 * A rider's SendPing over raw HTTP/1.1 whose body is held back after its
 * first half: once the ingest asked for the body (100 Continue) the call is
 * being answered. `finish()` sends the rest and resolves with the answer.
 */
async function slowSendPing(port: number) {
  const token = await testToken(uniqueId("rider"), "rider", "london");
  const body = JSON.stringify({
    ping: { ...PICKUP, accuracyM: 5, recordedAtMs: String(Date.now()), seq: "1" },
  });
  const client = await openRaw(port);
  client.socket.write(
    `POST ${SEND_PING} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Authorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n` +
      body.slice(0, 10),
  );
  await waitUntil(() => client.received().includes("100 Continue"));
  return {
    client,
    async finish(): Promise<string> {
      client.socket.write(body.slice(10));
      await waitUntil(() =>
        /\r\n\r\n\{.*\}$/s.test(client.received().split("100 Continue")[1] ?? ""),
      );
      return client.received();
    },
  };
}

describe("the HTTP/1.1 connection cap", () => {
  test("hundreds of idle sockets cannot keep a rider out: the oldest idlers make room and descriptors stay bounded", async () => {
    const before = descriptors();
    // A call in flight when the flood comes: never the one evicted.
    const rider = await slowSendPing(ingest.httpPort);
    const idle: RawClient[] = [];
    for (let i = 0; i < 200; i++) idle.push(await openRaw(ingest.httpPort));
    // The ingest keeps at most CAP connections, three descriptors each.
    await waitUntil(() => idle.filter((c) => !c.isClosed()).length <= CAP - 1, 10_000);
    expect(descriptors()).toBeLessThanOrEqual(before + 3 * CAP + 4);
    // The newest idlers are the ones left.
    expect(idle.slice(-(CAP - 1)).every((c) => !c.isClosed())).toBe(true);
    expect(rider.client.isClosed()).toBe(false);
    expect(await rider.finish()).toContain('"lastAcceptedSeq":"1"');

    // Another client (a health check, a rider) is answered at once.
    const health = await fetch(`http://127.0.0.1:${ingest.httpPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await hits(ingest, "http_connection_evicted")).toBeGreaterThanOrEqual(200 - (CAP - 1));
    expect(await ingest.metric("edge_ingest_http_connections")).toBeLessThanOrEqual(CAP);
    expect(ingest.logs.some((l) => l.includes("HTTP/1.1 connection cap reached"))).toBe(true);
    for (const client of idle) client.socket.destroy();
    rider.client.socket.destroy();
  });

  test("with every connection answering a rider's call, a newcomer is refused at once: 503 unavailable with Retry-After: 1, then closed (its request, if it comes after, read and dropped rather than reset)", async () => {
    const refusedBefore = await hits(ingest, "http_connection_refused");
    // The metrics read above may still hold a pooled connection: riders take every slot.
    const riders = [];
    for (let i = 0; i < CAP; i++) riders.push(await slowSendPing(ingest.httpPort));
    const late = await openRaw(ingest.httpPort);
    late.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await late.closed;
    const [head = "", body = ""] = late.received().split("\r\n\r\n");
    expect(head).toStartWith("HTTP/1.1 503");
    expect(head.toLowerCase()).toContain("retry-after: 1");
    expect(head.toLowerCase()).toContain("connection: close");
    expect(JSON.parse(body)).toMatchObject({ error: { code: "unavailable" } });
    // A request that reaches the front after its answer (the client reads nothing
    // until it has sent it): the client still reads the 503, no reset takes it away.
    const slow = connect(ingest.httpPort, "127.0.0.1");
    slow.pause();
    let slowReceived = "";
    let slowError: string | undefined;
    slow.on("data", (chunk) => {
      slowReceived += chunk.toString();
    });
    slow.on("error", (error: NodeJS.ErrnoException) => {
      slowError = error.code;
    });
    const slowClosed = new Promise((resolve) => slow.once("close", resolve));
    await new Promise((resolve) => slow.once("connect", resolve));
    const slowTcp = () => tcpConnection(slow.localPort ?? 0, ingest.httpPort);
    // The answer and the FIN after it are in (CLOSE_WAIT, 08) when its request goes.
    await waitUntil(() => slowTcp()?.state === "08", 5_000, "the answer");
    slow.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // Its request taken (acknowledged) or answered with a reset, before it reads.
    await waitUntil(() => {
      const tcp = slowTcp();
      return slow.writableLength === 0 && (!tcp || tcp.state === "07" || tcp.unacked === 0);
    });
    // Taken, not reset: the connection is still there (CLOSE_WAIT) with the answer unread.
    // (Closed outright, the front's kernel answers the request with a reset, and the
    // client's kernel drops the unread answer with it.)
    expect(slowTcp()).toMatchObject({ state: "08", unacked: 0 });
    expect(slowTcp()?.unread).toBeGreaterThan(0);
    slow.resume();
    await slowClosed;
    expect(slowError).toBeUndefined();
    expect(slowReceived).toStartWith("HTTP/1.1 503");
    // One that never reads nor closes is not kept: its linger ends within about a second.
    const stays = connect({ port: ingest.httpPort, host: "127.0.0.1", allowHalfOpen: true });
    stays.on("error", () => undefined);
    const staysOpenedAt = Date.now();
    await new Promise((resolve) => stays.once("close", resolve));
    expect(Date.now() - staysOpenedAt).toBeLessThan(5_000);
    // What an app's HTTP client makes of it: a status and when to come back.
    const viaFetch = await fetch(`http://127.0.0.1:${ingest.httpPort}/healthz`);
    expect(viaFetch.status).toBe(503);
    expect(viaFetch.headers.get("retry-after")).toBe("1");
    for (const rider of riders) {
      expect(rider.client.isClosed()).toBe(false);
      expect(await rider.finish()).toContain('"lastAcceptedSeq":"1"');
    }
    expect(await hits(ingest, "http_connection_refused")).toBe(refusedBefore + 4);
    for (const rider of riders) rider.client.socket.destroy();
  });
});

test("a local process on the server's loopback port behind the front is refused (403, connection closed): it cannot go round the port's limits", async () => {
  const token = await testToken(uniqueId("rider"), "rider", "london");
  const client = await openRaw(innerPort(ingest));
  const body = JSON.stringify({
    ping: { ...PICKUP, accuracyM: 5, recordedAtMs: String(Date.now()), seq: "1" },
  });
  client.socket.write(
    `POST ${SEND_PING} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Authorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  await client.closed;
  expect(client.received()).toStartWith("HTTP/1.1 403");
  expect(client.received()).toContain('"code":"forbidden"');
  // Nothing of the rider was stored.
  const through = await fetch(`http://127.0.0.1:${ingest.httpPort}${SEND_PING}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body,
  });
  const { ack } = (await through.json()) as { ack: { lastAcceptedSeq: string; dropped?: unknown } };
  expect(ack.lastAcceptedSeq).toBe("1");
  expect(ack.dropped).toBeUndefined();
});

test("a local process bound to another loopback address with the port of a live front connection is refused too (403): the front's connections are matched by address and port", async () => {
  const inner = innerPort(ingest);
  // A live front connection, its request head on its way: the front has connected to the server.
  const live = await openRaw(ingest.httpPort);
  live.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  let frontPorts: number[] = [];
  await waitUntil(() => {
    frontPorts = loopbackSockets(ingest)
      .filter((s) => !s.listening && s.remotePort === inner)
      .map((s) => s.localPort);
    return frontPorts.length > 0;
  });
  // All of 127.0.0.0/8 reaches a server on 127.0.0.1: same port, another address.
  const spoof = connect({
    host: "127.0.0.1",
    port: inner,
    localAddress: "127.0.0.2",
    localPort: frontPorts[0],
  });
  let received = "";
  spoof.on("data", (chunk) => {
    received += chunk.toString();
  });
  spoof.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => spoof.once("close", () => resolve()));
  await new Promise<void>((resolve) => spoof.once("connect", () => resolve()));
  expect(spoof.localAddress).toBe("127.0.0.2");
  spoof.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  await closed;
  expect(received).toStartWith("HTTP/1.1 403");
  expect(received).toContain('"code":"forbidden"');
  // The live connection is untouched: its request is answered.
  live.socket.write("\r\n");
  await waitUntil(() => live.received().startsWith("HTTP/1.1 200"));
  live.socket.destroy();
});

test("an idle local connection on the loopback port is closed unanswered by the HTTP server's own first-request deadline (10-14 s), while the front's connections, idle as long, are served", async () => {
  // The front's idle timeout well past that deadline: only the server's can close anything here.
  const node = await spawnIngest({ REDIS_URL: redis.url, INGEST_HTTP_IDLE_TIMEOUT_S: "30" });
  try {
    const openedAt = Date.now();
    const local = await openRaw(innerPort(node));
    // One front connection that has sent nothing (it holds no connection to the server
    // yet), one idle after an answer (its connection to the server is past its first request).
    const silent = await openRaw(node.httpPort);
    const answered = await openRaw(node.httpPort);
    answered.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await waitUntil(() => answered.received().startsWith("HTTP/1.1 200"));
    await local.closed;
    // Bun's timer fires 10-14 s after the connection opened; the rest is slack for a
    // loaded machine. Anything under the front's 30 s idle timeout is Bun's close.
    expect(Date.now() - openedAt).toBeLessThan(20_000);
    expect(local.received()).toBe("");
    for (const front of [silent, answered]) {
      expect(front.isClosed()).toBe(false);
      const before = front.received().length;
      front.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      await waitUntil(() => front.received().slice(before).startsWith("HTTP/1.1 200"));
      front.socket.destroy();
    }
  } finally {
    await node.stop();
  }
}, 40_000);

describe("the HTTP/1.1 port's deadlines", () => {
  test("a slowloris head (one header byte every 100 ms) is cut at the head deadline, not kept alive by its trickle", async () => {
    const before = await hits(timed, "http_head_timeout");
    const client = await openRaw(timed.httpPort);
    client.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    for (let i = 0; i < 100 && !client.isClosed(); i++) {
      client.socket.write("a");
      await Bun.sleep(100);
    }
    // Cut while still trickling (10 s of bytes), without an answer.
    expect(client.isClosed()).toBe(true);
    expect(client.received()).toBe("");
    expect(await hits(timed, "http_head_timeout")).toBe(before + 1);
  });

  test("a connection that sends nothing, or nothing after its answer, is closed after INGEST_HTTP_IDLE_TIMEOUT_S and counted", async () => {
    const before = await hits(timed, "http_idle_timeout");
    const silent = await openRaw(timed.httpPort);
    const kept = await openRaw(timed.httpPort);
    kept.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await waitUntil(() => kept.received().startsWith("HTTP/1.1 200"));
    await Promise.all([silent.closed, kept.closed]);
    // (+1 more when the metrics read before the test left its pooled connection idle)
    expect(await hits(timed, "http_idle_timeout")).toBeGreaterThanOrEqual(before + 2);
  });
});

test("each connection opened and closed is a debug line with its peer (and ms open), as on the h2c port", async () => {
  const client = await openRaw(timed.httpPort);
  const peer = `${client.socket.localAddress}:${client.socket.localPort}`;
  client.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  await waitUntil(() => client.received().startsWith("HTTP/1.1 200"));
  client.socket.end();
  await client.closed;
  const lines = () =>
    timed.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => typeof line.peer === "string" && line.peer.endsWith(peer));
  await waitUntil(() => lines().some((line) => line.msg === "http connection closed"));
  expect(lines().map((line) => line.msg)).toEqual([
    "http connection opened",
    "http connection closed",
  ]);
  expect(lines()[1]).toMatchObject({ level: 20, ms: expect.any(Number) });
});
