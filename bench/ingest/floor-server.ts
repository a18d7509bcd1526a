// The ingest bench's floor: a bare StreamPings server with the ingest's wire
// and nothing else, so a run can tell what this machine, the load process
// and node:http2 under Bun cost from what the ingest itself adds. Same wire
// protocol as the ingest's lean path (h2c, gRPC framing, the generated
// StreamPingsRequest / StreamPingsResponse, node:http2's compatibility API,
// the HTTP/2 stream read directly): each ping is decoded and acked at once,
// with no token check, session, checks or Redis. With `--redis`, the pings
// of each event-loop turn are first written as bare ioredis pipelines
// (raw-ping-writes.ts, the raw ceiling's four commands per ping) and acked
// when theirs is back: the floor plus Redis writes, batched within the
// ingest writer's default bounds (256 pings a pipeline, 4 in flight). Acks keep each stream's
// order: they are sent as read, or as their pipelines (in order on one
// connection) come back. Prints {"port": N} once listening.
//   bun bench/ingest/floor-server.ts [--redis redis://127.0.0.1:6379]
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { registerScripts } from "../../core/redis/scripts";
import { polyfillTracingChannelHasSubscribers } from "../../core/redis/tracing-channel-polyfill";
import { encodeGrpcFrame, GrpcFrameReader } from "../../location-ingest/wire/grpc-frames";
import { PING_MESSAGE_MAX_BYTES } from "../../location-ingest/wire/routes";
import {
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { queueRawPingWrites, type RawPing } from "./raw-ping-writes";

const { values: args } = parseArgs({
  options: {
    redis: { type: "string" },
    port: { type: "string", default: "0" },
  },
});
const CITIES = ["london", "paris", "berlin"];
/** The ingest writer's defaults (INGEST_MAX_BATCH_PINGS, INGEST_MAX_FLUSHES_IN_FLIGHT). */
const MAX_BATCH_PINGS = 256;
const MAX_IN_FLIGHT = 4;
/** The interval the acks ask for: a constant, as the ingest's policy sends for a moving rider. */
const NEXT_INTERVAL_MS = 1_000;

// The same client set-up as the ingest's (its tracing polyfill), as the raw ceiling does.
polyfillTracingChannelHasSubscribers();
const redis = args.redis ? registerScripts(new Redis(args.redis)) : undefined;

/** A ping's ack as the ingest writes it: a typed literal encoded by protobuf-es, one gRPC frame. */
function ackFrame(seq: bigint): Buffer {
  return encodeGrpcFrame(
    toBinary(StreamPingsResponseSchema, {
      $typeName: "delivery.tracking.v1.StreamPingsResponse",
      event: {
        case: "ack",
        value: {
          $typeName: "delivery.tracking.v1.PingAck",
          lastAcceptedSeq: seq,
          nextIntervalMs: NEXT_INTERVAL_MS,
          dropped: [],
        },
      },
    }),
  );
}

interface Queued {
  readonly ping: RawPing;
  readonly ack: () => void;
}
let queue: Queued[] = [];
let inFlight = 0;
let scheduled = false;

/** Gathers one turn's pings, then sends them while fewer than MAX_IN_FLIGHT pipelines are out. */
function schedule(): void {
  if (scheduled || inFlight >= MAX_IN_FLIGHT || queue.length === 0) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    while (inFlight < MAX_IN_FLIGHT && queue.length > 0) {
      const batch = queue.length <= MAX_BATCH_PINGS ? queue : queue.slice(0, MAX_BATCH_PINGS);
      queue = queue.length <= MAX_BATCH_PINGS ? [] : queue.slice(MAX_BATCH_PINGS);
      flush(batch);
    }
  });
}

/** Writes one batch as one pipeline, then acks it (the process stops if Redis fails). */
function flush(batch: Queued[]): void {
  inFlight += 1;
  const pipeline = (redis as Redis).pipeline();
  for (const { ping } of batch) queueRawPingWrites(pipeline, ping);
  pipeline.exec().then(
    () => {
      inFlight -= 1;
      for (const { ack } of batch) ack();
      schedule();
    },
    (error: unknown) => {
      console.error("floor: Redis pipeline failed", error);
      process.exit(1);
    },
  );
}

let streamsOpened = 0;

const server = http2.createServer(
  { settings: { maxConcurrentStreams: 100 } },
  (request, response) => {
    // No token check: a rider of its own per stream, in the load process's three cities.
    const index = streamsOpened++;
    const riderId = `floor-${process.pid}-${index}`;
    const city = CITIES[index % CITIES.length] as string;
    const { stream } = request;
    const frames = new GrpcFrameReader(PING_MESSAGE_MAX_BYTES);
    let unacked = 0;
    let requestEnded = false;
    const gone = () => stream.destroyed || stream.closed;
    const finish = () => {
      if (gone()) return;
      response.addTrailers({ "grpc-status": "0" });
      response.end();
    };
    const ack = (seq: bigint) => {
      unacked -= 1;
      if (!gone()) response.write(ackFrame(seq));
      if (requestEnded && unacked === 0) finish();
    };
    // The load process resets its streams at the end of a window: nothing to report.
    stream.on("error", () => undefined);
    response.writeHead(200, { "content-type": "application/grpc" });
    stream.on("data", (chunk: Buffer) => {
      const completed = frames.push(chunk);
      if (completed === "too_large") return stream.close(http2.constants.NGHTTP2_CANCEL);
      for (const frame of completed) {
        const ping = fromBinary(StreamPingsRequestSchema, frame.message).ping;
        if (!ping) continue;
        unacked += 1;
        const { seq } = ping;
        if (!redis) {
          ack(seq);
          continue;
        }
        queue.push({
          ping: { riderId, city, lat: ping.lat, lng: ping.lng, seq },
          ack: () => ack(seq),
        });
        schedule();
      }
    });
    stream.on("end", () => {
      requestEnded = true;
      if (unacked === 0) finish();
    });
  },
);
server.listen(Number(args.port), "127.0.0.1", () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
});
