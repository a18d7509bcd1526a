// A load process of rider apps: N concurrent StreamPings streams over h2c,
// hand-framed (a Connect client would use more CPU than the server it
// measures): plain gRPC (the ingest's lean path), or with `--protocol
// connect` the Connect streaming protocol (served by connect-node). Prints
// one JSON line of results when done.
//   bun bench/ingest/load-riders.ts --url http://127.0.0.1:8081 --streams 2000 --seconds 10 [--rate 20000] [--protocol connect]
import http2 from "node:http2";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { mintToken } from "../../core/auth/mint-token";
import {
  DropReason,
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { measureWindow } from "../support/measure-window";
import { Reservoir } from "../support/percentiles";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8081" },
    streams: { type: "string", default: "2000" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "5" },
    /** Total pings/s across all streams; 0 = closed loop (each stream sends when its last ack is back). */
    rate: { type: "string", default: "0" },
    secret: { type: "string", default: process.env.JWT_SECRET ?? "" },
    "streams-per-session": { type: "string", default: "100" },
    /** Rider ids are `<prefix><i>`; the fan-out bench seeds an order for each. */
    "rider-prefix": { type: "string", default: `bench-${process.pid}-` },
    /** grpc (application/grpc) or connect (application/connect+proto): same framing of messages. */
    protocol: { type: "string", default: "grpc" },
  },
});
const streamCount = Number(args.streams);
const rate = Number(args.rate);
const perSession = Number(args["streams-per-session"]);
const PATH = "/delivery.tracking.v1.LocationIngestService/StreamPings";
const CONTENT_TYPES: Record<string, Record<string, string>> = {
  grpc: { "content-type": "application/grpc", te: "trailers" },
  connect: { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
};
const protocolHeaders = CONTENT_TYPES[args.protocol ?? "grpc"];
if (!protocolHeaders) throw new Error(`--protocol must be grpc or connect`);
/** The envelope flag of Connect's end-of-stream message (JSON, not a response). */
const END_STREAM_FLAG = 0x02;

interface RiderStream {
  request: http2.ClientHttp2Stream;
  seq: bigint;
  lat: number;
  lng: number;
  sentAt: number[];
  pending: Buffer;
}

const latency = new Reservoir();
const dropped = new Map<string, number>();
let measuring = false;
let sent = 0;
let acked = 0;
let behind = 0;
const errors: string[] = [];

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function sendPing(stream: RiderStream): void {
  stream.seq += 1n;
  stream.lat += 0.00001; // ~1 m north per ping: never a teleport
  const ping = { lat: stream.lat, lng: stream.lng, accuracyM: 5, speedMps: 5, headingDeg: 0 };
  const message = create(StreamPingsRequestSchema, {
    ping: { ...ping, recordedAtMs: BigInt(Date.now()), seq: stream.seq },
  });
  stream.sentAt.push(performance.now());
  stream.request.write(frame(toBinary(StreamPingsRequestSchema, message)));
  if (measuring) sent += 1;
}

function onData(stream: RiderStream, chunk: Buffer): void {
  stream.pending = stream.pending.length ? Buffer.concat([stream.pending, chunk]) : chunk;
  while (stream.pending.length >= 5) {
    const flags = stream.pending[0] as number;
    const length = stream.pending.readUInt32BE(1);
    if (stream.pending.length < 5 + length) break;
    const body = stream.pending.subarray(5, 5 + length);
    stream.pending = stream.pending.subarray(5 + length);
    if (flags & END_STREAM_FLAG) continue;
    const response = fromBinary(StreamPingsResponseSchema, body);
    if (response.event.case !== "ack") continue;
    const started = stream.sentAt.shift();
    if (measuring) {
      acked += 1;
      if (started !== undefined) latency.add(performance.now() - started);
      for (const drop of response.event.value.dropped) {
        const reason = DropReason[drop.reason] ?? String(drop.reason);
        dropped.set(reason, (dropped.get(reason) ?? 0) + 1);
      }
    }
    if (rate === 0 && running) sendPing(stream);
  }
}

let running = true;
const sessions: http2.ClientHttp2Session[] = [];
const streams: RiderStream[] = [];
for (let i = 0; i < streamCount; i++) {
  if (i % perSession === 0) sessions.push(http2.connect(args.url ?? ""));
  const session = sessions[sessions.length - 1] as http2.ClientHttp2Session;
  const city = ["london", "paris", "berlin"][i % 3] as string;
  const token = await mintToken(args.secret ?? "", {
    sub: `${args["rider-prefix"]}${i}`,
    role: "rider",
    city,
  });
  const request = session.request({
    ":method": "POST",
    ":path": PATH,
    ...protocolHeaders,
    authorization: `Bearer ${token}`,
  });
  const stream: RiderStream = {
    request,
    seq: BigInt(Date.now()) * 1000n,
    lat: 51.5 + (i % 100) * 0.001,
    lng: -0.12 + Math.floor(i / 100) * 0.001,
    sentAt: [],
    pending: Buffer.alloc(0),
  };
  request.on("data", (chunk: Buffer) => onData(stream, chunk));
  request.on("error", (error) => {
    if (running && errors.length < 5) errors.push(String(error));
  });
  streams.push(stream);
}

let ticker: ReturnType<typeof setInterval> | undefined;
if (rate === 0) {
  for (const stream of streams) sendPing(stream);
} else {
  // Open loop: every tick, send what is due by the clock (timers fire late
  // under load, so a fixed share per tick would undershoot), round robin.
  const TICK_MS = 5;
  const openedAt = performance.now();
  let next = 0;
  let issued = 0;
  ticker = setInterval(() => {
    const due = Math.floor(((performance.now() - openedAt) / 1000) * rate);
    for (; issued < due; issued++) {
      const stream = streams[next++ % streams.length] as RiderStream;
      if (stream.sentAt.length > 8) behind += 1;
      else sendPing(stream);
    }
  }, TICK_MS);
}

const { elapsed, cpuCores } = await measureWindow(
  Number(args.warmup),
  Number(args.seconds),
  (open) => {
    measuring = open;
  },
);
running = false;
if (ticker) clearInterval(ticker);
for (const stream of streams) stream.request.close();
for (const session of sessions) session.destroy();

console.log(
  JSON.stringify({
    streams: streamCount,
    mode: rate === 0 ? "closed-loop" : `open-loop ${rate}/s`,
    seconds: elapsed,
    sent,
    acked,
    ackedPerSecond: acked / elapsed,
    behind,
    dropped: Object.fromEntries(dropped),
    ackLatencyMs: {
      p50: latency.percentile(50),
      p99: latency.percentile(99),
      p999: latency.percentile(99.9),
    },
    cpuCores,
    errors,
  }),
);
// Stay until the bench has read this process's CPU time (it closes stdin; so does its exit).
await Bun.stdin.text();
process.exit(0);
