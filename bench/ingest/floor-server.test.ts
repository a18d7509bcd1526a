import { afterAll, beforeAll, expect, test } from "bun:test";
import http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { keys } from "../../core/redis/keys";
import { encodeGrpcFrame, GrpcFrameReader } from "../../location-ingest/wire/grpc-frames";
import {
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { startFloor } from "./servers-under-test";

// The floor is the ingest bench's yardstick: what it must do is answer every
// ping of a stream with its ack, in order, over the ingest's wire, and (with
// Redis) only once the ping's writes are in.
const PINGS = 60;
const FIRST_SEQ = 1_000n;
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  // Unset when beforeAll failed: that failure is the one to read.
  await redis?.stop();
});

/** Sends PINGS pings in one write on one StreamPings, then half-closes; the acks' seqs and the grpc-status. */
async function streamPings(url: string): Promise<{ acked: bigint[]; status: string | undefined }> {
  const session = http2.connect(url);
  try {
    const request = session.request({
      ":method": "POST",
      ":path": "/delivery.tracking.v1.LocationIngestService/StreamPings",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const frames = new GrpcFrameReader(1024);
    const acked: bigint[] = [];
    request.on("data", (chunk: Buffer) => {
      const completed = frames.push(chunk);
      if (completed === "too_large") throw new Error("an ack frame too large");
      for (const { message } of completed) {
        const response = fromBinary(StreamPingsResponseSchema, message);
        if (response.event.case === "ack") acked.push(response.event.value.lastAcceptedSeq);
      }
    });
    const status = new Promise<string | undefined>((resolve, reject) => {
      request.on("trailers", (trailers) => resolve(trailers["grpc-status"] as string | undefined));
      request.on("error", reject);
    });
    const pings = Array.from({ length: PINGS }, (_, i) =>
      encodeGrpcFrame(
        toBinary(StreamPingsRequestSchema, {
          $typeName: "delivery.tracking.v1.StreamPingsRequest",
          ping: {
            $typeName: "delivery.tracking.v1.GeoPing",
            lat: 51.5,
            lng: -0.12 + i * 0.00001,
            accuracyM: 5,
            speedMps: 5,
            headingDeg: 0,
            recordedAtMs: BigInt(Date.now()),
            seq: FIRST_SEQ + BigInt(i),
          },
        }),
      ),
    );
    request.end(Buffer.concat(pings));
    return { acked, status: await status };
  } finally {
    session.close();
  }
}

const inOrder = Array.from({ length: PINGS }, (_, i) => FIRST_SEQ + BigInt(i));

test("the floor acks every ping of a stream once, in order, then ends it OK", async () => {
  const floor = await startFloor();
  try {
    expect(await streamPings(floor.url)).toEqual({ acked: inOrder, status: "0" });
  } finally {
    await floor.stop();
  }
});

test("the floor with Redis acks every ping in order once its writes are in", async () => {
  const floor = await startFloor(redis.url);
  const client = new Redis(redis.url);
  try {
    expect(await streamPings(floor.url)).toEqual({ acked: inOrder, status: "0" });
    // The first stream's rider is in London: one stream entry per ping, written before its ack.
    expect(await client.xlen(keys.locationLog("london"))).toBe(PINGS);
    expect(await client.zcard(keys.cityRidersSeen("london"))).toBe(1);
  } finally {
    client.disconnect();
    await floor.stop();
  }
});
