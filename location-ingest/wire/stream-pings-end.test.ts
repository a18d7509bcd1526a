import { expect, test } from "bun:test";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack, useIngestOnRedis } from "../../test/support/ingest";
import { grpcFrame, rawGrpcCall, rawH2Request } from "../../test/support/raw-grpc";
import { testToken, tokenExpMs, uniqueId } from "../../test/support/tokens";

// Longer than the test token's life: the token's exp comes first, inside a half-sent frame.
const MESSAGE_TIMEOUT_MS = 4_000;
const fixture = useIngestOnRedis({ INGEST_MESSAGE_TIMEOUT_MS: String(MESSAGE_TIMEOUT_MS) });
const STREAM_PINGS = "/delivery.tracking.v1.LocationIngestService/StreamPings";

function pingFrame(): Buffer {
  const [ping] = pingTrack(1);
  return grpcFrame(toBinary(StreamPingsRequestSchema, create(StreamPingsRequestSchema, { ping })));
}

/**
 * Starts a StreamPings with `start` on a session whose client reads nothing
 * yet (receive window 0: the call's end cannot be written, so its HTTP/2
 * stream stays open past the token's exp and the frame's clock), sending a
 * whole ping, then three bytes of the next frame's prefix (its clock starts
 * now), with a rider token that lives 3 s. Waits past the moment the frame's
 * clock would fire, had it outlived the call's end at exp, then reads.
 */
async function endPastTheFrameClock<T>(
  start: (session: http2.ClientHttp2Session, token: string, body: Buffer) => Promise<T>,
): Promise<{ result: T; token: string; sentAt: number }> {
  const session = http2.connect(fixture.ingest.grpcUrl, { settings: { initialWindowSize: 0 } });
  try {
    const token = await testToken(uniqueId("rider"), "rider", "london", 3);
    const sentAt = Date.now();
    const half = grpcFrame(new Uint8Array(20)).subarray(0, 3);
    const call = start(session, token, Buffer.concat([pingFrame(), half]));
    await Bun.sleep(sentAt + MESSAGE_TIMEOUT_MS + 1_000 - Date.now());
    session.settings({ initialWindowSize: 65_535 });
    return { result: await call, token, sentAt };
  } finally {
    session.close();
  }
}

const limitHits = () =>
  fixture.ingest.app.registry.getSingleMetricAsString("edge_ingest_limit_hits_total");

test("a lean gRPC StreamPings whose token expires inside a half-sent frame ends `token expired` only: the frame's clock stops with the call, though the stream outlives it (no message_timeout counted later)", async () => {
  const { result, token, sentAt } = await endPastTheFrameClock((session, token, body) =>
    rawGrpcCall(session, STREAM_PINGS, token, body, { end: false }),
  );
  expect(tokenExpMs(token)).toBeLessThan(sentAt + MESSAGE_TIMEOUT_MS);
  // The ping was read and acked: the call was reading when the half frame came.
  const ack = result.body.subarray(5, 5 + result.body.readUInt32BE(1));
  expect(fromBinary(StreamPingsResponseSchema, ack).event.case).toBe("ack");
  expect([result.status, result.message]).toEqual(["16", "token expired"]);
  expect(await limitHits()).not.toContain('limit="message_timeout"');
}, 15_000);

test("a gRPC-Web StreamPings (connect-node) whose token expires inside a half-sent frame ends `token expired` only: the message guard's clock stops with the call, though connect-node waits on the client to write its end (no message_timeout counted later)", async () => {
  // A client reading nothing yet keeps connect-node's writer waiting, so the handler
  // cannot finish its end until the client reads, past the frame's clock.
  const { result, token, sentAt } = await endPastTheFrameClock((session, token, body) =>
    rawH2Request(session, {
      path: STREAM_PINGS,
      headers: {
        "content-type": "application/grpc-web+proto",
        authorization: `Bearer ${token}`,
      },
      body,
      end: false,
    }),
  );
  expect(tokenExpMs(token)).toBeLessThan(sentAt + MESSAGE_TIMEOUT_MS);
  // The ack, then the trailers as gRPC-Web's last frame (flag 0x80).
  const ackLength = result.body.readUInt32BE(1);
  const ack = result.body.subarray(5, 5 + ackLength);
  expect(fromBinary(StreamPingsResponseSchema, ack).event.case).toBe("ack");
  const trailers = result.body.subarray(5 + ackLength);
  expect(trailers[0]).toBe(0x80);
  const status = trailers.subarray(5).toString();
  expect(status).toContain("grpc-status: 16");
  expect(status).toContain("grpc-message: token%20expired");
  expect(await limitHits()).not.toContain('limit="message_timeout"');
}, 15_000);
