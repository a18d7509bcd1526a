// The transport attacks of the ingest hardening issue, against a running
// ingest, while one rider keeps streaming: idle sockets that never finish the
// HTTP/2 preface or stop after it (and never close their side), HTTP/1.1 bytes
// on the h2c port, lying length prefixes and half-sent frames, and one rider
// token opening many streams. Prints the ingest's descriptors and RSS before,
// at the peak and after, the ack latency of a rider connected before and of
// one connecting while every idle socket is held, and /readyz meanwhile.
//   bun bench/ingest/attack-transport.ts --port 8081 --http-port 8082 --pid <ingest pid> --secret <JWT secret> \
//     [--idle 1100] [--http1 200] [--frames 200] [--streams 50] [--hold 20]
import { readdirSync } from "node:fs";
import http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";
import type * as grpc from "@grpc/grpc-js";
import { mintToken } from "../../core/auth/mint-token";
import { bearerMetadata, createStockIngestClient } from "../../test/support/stock-grpc-client";
import { Reservoir } from "../support/percentiles";
import { residentBytes } from "../support/process-stats";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "8081" },
    "http-port": { type: "string", default: "8082" },
    pid: { type: "string" },
    secret: { type: "string", default: process.env.JWT_SECRET ?? "" },
    idle: { type: "string", default: "1100" },
    http1: { type: "string", default: "200" },
    frames: { type: "string", default: "200" },
    streams: { type: "string", default: "50" },
    /** Seconds the idle sockets are held (and the rider measured) after they are all open. */
    hold: { type: "string", default: "20" },
    "ping-every-ms": { type: "string", default: "100" },
  },
});
const port = Number(args.port);
const pid = Number(args.pid);
if (!pid || !args.secret) throw new Error("--pid and --secret (or JWT_SECRET) are required");
const PATH = "/delivery.tracking.v1.LocationIngestService";

function snapshot() {
  return {
    fds: readdirSync(`/proc/${pid}/fd`).length,
    rssMiB: Math.round(residentBytes(pid) / 2 ** 20),
  };
}

async function riderToken(id: string) {
  return mintToken(args.secret as string, { sub: id, role: "rider", city: "london" });
}

/** One rider on its own connection, pinging every few ms; counts acks and failures. */
async function startRider(name: string) {
  const client = createStockIngestClient(`127.0.0.1:${port}`, {
    "grpc.use_local_subchannel_pool": 1,
  });
  const latency = new Reservoir();
  const failures: string[] = [];
  let acked = 0;
  let seq = BigInt(Date.now()) * 1_000n;
  let sentAt: number[] = [];
  let stopped = false;
  const token = await riderToken(`${name}-${process.pid}`);
  const open = () => {
    const call = (
      client.StreamPings as (
        m: grpc.Metadata,
      ) => grpc.ClientDuplexStream<unknown, { ack?: unknown }>
    )(bearerMetadata(token));
    call.on("data", (response) => {
      if (!response.ack) return;
      const sent = sentAt.shift();
      if (sent !== undefined) latency.add(performance.now() - sent);
      acked += 1;
    });
    call.on("error", (error: Error) => {
      failures.push(error.message);
      sentAt = [];
      if (!stopped) current = open();
    });
    return call;
  };
  let current = open();
  const timer = setInterval(() => {
    seq += 1n;
    sentAt.push(performance.now());
    current.write({
      ping: {
        lat: 51.5,
        lng: -0.12,
        accuracyM: 5,
        recordedAtMs: String(Date.now()),
        seq: String(seq),
      },
    });
  }, Number(args["ping-every-ms"]));
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      current.end();
      client.close();
      return { acked, failures: failures.length, firstFailure: failures[0], latency };
    },
  };
}

/** Raw sockets that never close their side (allowHalfOpen), half of them past the preface. */
async function holdIdle(count: number): Promise<Socket[]> {
  const preface = Buffer.concat([
    Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
    Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
  ]);
  const held: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    socket.on("error", () => undefined);
    const opened = await new Promise<boolean>((resolve) => {
      socket.once("connect", () => resolve(true));
      socket.once("error", () => resolve(false));
    });
    if (!opened) continue;
    if (i % 2) socket.write(preface);
    held.push(socket);
  }
  return held;
}

async function http1Bytes(count: number): Promise<void> {
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const socket = connect(port, "127.0.0.1", () =>
            socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
          );
          socket.on("error", () => resolve());
          socket.resume();
          socket.once("close", () => resolve());
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 10_000);
        }),
    ),
  );
}

/** Lying prefixes, half frames and one token's many streams, 4 streams per connection. */
async function badStreams(frames: number, streams: number): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  const attacker = await riderToken(`attacker-${process.pid}`);
  const sessions: http2.ClientHttp2Session[] = [];
  const calls: Promise<void>[] = [];
  for (let i = 0; i < frames + streams; i++) {
    if (i % 4 === 0) {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on("error", () => undefined);
      sessions.push(session);
    }
    const session = sessions[sessions.length - 1] as http2.ClientHttp2Session;
    const body =
      i >= frames
        ? Buffer.alloc(0)
        : i % 2
          ? Buffer.from([0, 0, 0, 0, 100, 1, 2, 3])
          : Buffer.from([0, 0, 0]);
    calls.push(
      new Promise<void>((resolve) => {
        const stream = session.request({
          ":method": "POST",
          ":path": `${PATH}/StreamPings`,
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${attacker}`,
        });
        let status = "none";
        stream.on("trailers", (t) => {
          status = String(t["grpc-status"]);
        });
        stream.on("response", (h) => {
          if (h["grpc-status"]) status = String(h["grpc-status"]);
        });
        stream.on("error", () => undefined);
        stream.on("close", () => {
          statuses[status] = (statuses[status] ?? 0) + 1;
          resolve();
        });
        stream.write(body);
        // Streams left open by the server are ended by the attacker after the hold.
        setTimeout(() => stream.close(), Number(args.hold) * 1000).unref();
      }),
    );
  }
  await Promise.all(calls);
  for (const session of sessions) session.destroy();
  return statuses;
}

const before = snapshot();
const rider = await startRider("steady-rider");
await Bun.sleep(1_000);
const started = performance.now();
const [held, , streamStatuses] = await Promise.all([
  holdIdle(Number(args.idle)),
  http1Bytes(Number(args.http1)),
  badStreams(Number(args.frames), Number(args.streams)),
]);
const opened = performance.now() - started;
const peak = snapshot();
// While every idle socket is held: can a rider connect now, and does /readyz answer?
const readyStarted = performance.now();
const readyz = await fetch(`http://127.0.0.1:${args["http-port"]}/readyz`, {
  signal: AbortSignal.timeout(5_000),
})
  .then((r) => `${r.status} in ${Math.round(performance.now() - readyStarted)} ms`)
  .catch((error: Error) => `failed: ${error.message}`);
const newcomer = await startRider("newcomer-rider");
await Bun.sleep(Number(args.hold) * 1000);
const held_ = snapshot();
const newcomerResult = newcomer.stop();
const stillOpenClientSide = held.filter((s) => !s.destroyed).length;
for (const socket of held) socket.destroy();
const riderResult = rider.stop();
await Bun.sleep(2_000);
const after = snapshot();
console.log(
  JSON.stringify(
    {
      idleSocketsOpened: held.length,
      secondsToOpenAll: Math.round(opened / 100) / 10,
      ingest: { before, rightAfterOpening: peak, afterHold: held_, afterAttackersLeft: after },
      idleSocketsStillOpenOnClientSide: stillOpenClientSide,
      badStreamEndings: streamStatuses,
      readyzWhileHeld: readyz,
      riderConnectingWhileHeld: {
        acked: newcomerResult.acked,
        streamFailures: newcomerResult.failures,
        firstFailure: newcomerResult.firstFailure,
        ackMs: {
          p50: newcomerResult.latency.percentile(50),
          p99: newcomerResult.latency.percentile(99),
        },
      },
      riderConnectedBefore: {
        acked: riderResult.acked,
        streamFailures: riderResult.failures,
        firstFailure: riderResult.firstFailure,
        ackMs: {
          p50: riderResult.latency.percentile(50),
          p99: riderResult.latency.percentile(99),
          max: riderResult.latency.percentile(100),
        },
      },
    },
    null,
    2,
  ),
);
process.exit(0);
