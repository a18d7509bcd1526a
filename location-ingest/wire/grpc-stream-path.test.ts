// The lean StreamPings path reading far ahead of its acks: a rider app that
// writes a burst (a reconnect flushing what it queued) gets the read paused
// past the pings in flight (MAX_PINGS_IN_FLIGHT, 32) and resumed as acks go
// out, with every ping acked once, in request order, and the last one stored.
import { expect, test } from "bun:test";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { parseStoredPosition } from "../../core/position/position-forms";
import { keys } from "../../core/redis/keys";
import {
  type PingAck,
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack, useIngestOnRedis } from "../../test/support/ingest";
import { grpcFrame } from "../../test/support/raw-grpc";
import { testToken, uniqueId } from "../../test/support/tokens";

const fixture = useIngestOnRedis();
const PATH = "/delivery.tracking.v1.LocationIngestService/StreamPings";

test("pings sent while the read is paused are read after it resumes: every ping acked once, in order", async () => {
  const riderId = uniqueId("rider");
  const token = await testToken(riderId, "rider", "london");
  const track = pingTrack(100);
  const frames = track.map((ping) =>
    grpcFrame(toBinary(StreamPingsRequestSchema, create(StreamPingsRequestSchema, { ping }))),
  );
  const session = http2.connect(fixture.ingest.grpcUrl);
  const acks: PingAck[] = [];
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": PATH,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    // 40 at once: the ingest pauses its read at 32 in flight. The other 60 go
    // when the first ack is back, so they arrive while it is paused (it resumes
    // below 16, two dozen Redis round trips later).
    stream.write(Buffer.concat(frames.slice(0, 40)));
    let pending = Buffer.alloc(0);
    stream.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const length = pending.readUInt32BE(1);
        const response = fromBinary(StreamPingsResponseSchema, pending.subarray(5, 5 + length));
        pending = pending.subarray(5 + length);
        if (response.event.case !== "ack") continue;
        acks.push(response.event.value);
        if (acks.length === 1) {
          for (const frame of frames.slice(40)) stream.write(frame);
          stream.end();
        }
      }
    });
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.on("trailers", resolve);
      stream.on("error", reject);
    });
    expect(trailers["grpc-status"]).toBe("0");
  } finally {
    session.close();
  }
  expect(acks.map((ack) => ack.lastAcceptedSeq)).toEqual(track.map((ping) => ping.seq));
  expect(acks.every((ack) => ack.dropped.length === 0)).toBe(true);
  const stored = parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)));
  expect(stored?.seq).toBe(100n);
});
