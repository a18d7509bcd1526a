// The HTTP/1.1 port's front as a relay: bytes pass both ways whole and in
// order when the receiving side stops reading for a while. 16 MiB each way
// is far more than loopback sockets buffer, so the front must keep what the
// kernel does not take and pause the sending side until it drains.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import pino from "pino";
import { Registry } from "prom-client";
import { TEST_JWT_SECRET } from "../../test/support/tokens";
import { loadIngestConfig } from "../config";
import { createIngestMetrics } from "../metrics";
import { createHttp1ConnectionGuard } from "./http1-connection-guard";

const PAYLOAD = randomBytes(16 * 1024 * 1024);
const digest = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

let inner: Server;
let guard: ReturnType<typeof createHttp1ConnectionGuard>;
let frontPort: number;

beforeAll(async () => {
  // The inner server: "send" answers the payload; anything else is read late, and
  // answered with its hash once a payload's worth has come.
  inner = createServer((socket) => {
    socket.once("data", (first: Buffer) => {
      if (first.toString() === "send") return void socket.end(PAYLOAD);
      const chunks = [first];
      let bytes = first.byteLength;
      socket.pause();
      setTimeout(() => socket.resume(), 300);
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        bytes += chunk.byteLength;
        if (bytes === PAYLOAD.byteLength) socket.end(digest(Buffer.concat(chunks)));
      });
    });
  });
  await new Promise<void>((resolve) => inner.listen(0, "127.0.0.1", resolve));
  // Only its transport limits are used (defaults); nothing connects to this Redis.
  const config = loadIngestConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    REDIS_URL: "redis://127.0.0.1:1",
  });
  guard = createHttp1ConnectionGuard({
    limits: config.transport,
    metrics: createIngestMetrics(new Registry()),
    logger: pino({ level: "silent" }),
  });
  frontPort = await guard.listen(0, "127.0.0.1", (inner.address() as AddressInfo).port);
});

afterAll(async () => {
  await guard?.stop(async () => undefined);
  inner?.close();
});

function received(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    socket.once("end", () => resolve(Buffer.concat(chunks)));
    socket.once("error", reject);
  });
}

test("an answer far larger than the socket buffers reaches a client that waits before reading", async () => {
  const client = connect(frontPort, "127.0.0.1");
  client.write("send");
  client.pause();
  await Bun.sleep(300);
  const answer = received(client);
  client.resume();
  expect(digest(await answer)).toBe(digest(PAYLOAD));
  client.destroy();
});

test("a request far larger than the socket buffers reaches a server that waits before reading", async () => {
  const client = connect(frontPort, "127.0.0.1");
  const answer = received(client);
  // Not half-closed: an HTTP client keeps its side open for the answer.
  client.write(PAYLOAD);
  expect((await answer).toString()).toBe(digest(PAYLOAD));
  client.destroy();
});

test("what a client sends while the front's connection to the server is still opening waits with the client paused, then passes whole", async () => {
  // The connection to the server is held opening for a while (its open handler delayed).
  const connectNow = Bun.connect;
  const { promise: opening, resolve: opened } = Promise.withResolvers<void>();
  type ConnectOptions = { socket: { open?: (socket: unknown) => void } };
  const delayedOpen = (options: ConnectOptions) =>
    (connectNow as unknown as (options: ConnectOptions) => unknown)({
      ...options,
      socket: {
        ...options.socket,
        open: (socket: unknown) => void opening.then(() => options.socket.open?.(socket)),
      },
    });
  (Bun as unknown as { connect: unknown }).connect = delayedOpen;
  try {
    const client = connect(frontPort, "127.0.0.1");
    const answer = received(client);
    client.write(PAYLOAD);
    // 16 MiB is more than the kernel buffers for a reader that stopped: a front that
    // kept reading would take it all into its memory (this failed before); a paused
    // client keeps the rest.
    await Bun.sleep(1_000);
    expect(client.writableLength).toBeGreaterThan(0);
    opened();
    expect((await answer).toString()).toBe(digest(PAYLOAD));
    client.destroy();
  } finally {
    (Bun as unknown as { connect: unknown }).connect = connectNow;
  }
});

test("a connection whose backlog passes 4 MiB is cut and counted as http_relay_backlog", async () => {
  // A client socket whose pause does not hold (what the cut is for) and a hop that
  // does not open: everything the client sends waits in the front.
  const listenNow = Bun.listen;
  const connectNow = Bun.connect;
  type Options = { socket: { open?: (socket: { pause(): void }) => void } };
  (Bun as unknown as { listen: unknown }).listen = (options: Options) =>
    (listenNow as unknown as (options: Options) => unknown)({
      ...options,
      socket: {
        ...options.socket,
        open(socket) {
          socket.pause = () => undefined;
          options.socket.open?.(socket);
        },
      },
    });
  (Bun as unknown as { connect: unknown }).connect = () => new Promise(() => undefined);
  const registry = new Registry();
  const leaky = createHttp1ConnectionGuard({
    limits: loadIngestConfig({ JWT_SECRET: TEST_JWT_SECRET, REDIS_URL: "redis://127.0.0.1:1" })
      .transport,
    metrics: createIngestMetrics(registry),
    logger: pino({ level: "silent" }),
  });
  try {
    const port = await leaky.listen(0, "127.0.0.1", (inner.address() as AddressInfo).port);
    const client = connect(port, "127.0.0.1");
    client.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    client.write(PAYLOAD);
    await closed;
    const hits = await registry.getSingleMetricAsString("edge_ingest_limit_hits_total");
    expect(hits).toMatch(/limit="http_relay_backlog"[^\n]* 1$/m);
    expect(leaky.size).toBe(0);
  } finally {
    (Bun as unknown as { listen: unknown }).listen = listenNow;
    (Bun as unknown as { connect: unknown }).connect = connectNow;
    await leaky.stop(async () => undefined);
  }
});
