import { describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { StreamPingsRequestSchema } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { bearer, pingTrack, useIngestOnRedis } from "../test/support/ingest";
import { openPingStream } from "../test/support/ping-stream";
import { grpcFrame } from "../test/support/raw-grpc";
import { dataFrame, errorCodeOf, FRAME, grpcHeadersFrame, openRawH2 } from "../test/support/raw-h2";
import { testToken, uniqueId } from "../test/support/tokens";

const fixture = useIngestOnRedis({
  INGEST_MAX_STREAMS_PER_RIDER: "2",
  INGEST_MAX_STREAMS_PER_CONNECTION: "3",
});
const STREAM_PINGS = "/delivery.tracking.v1.LocationIngestService/StreamPings";
const REFUSED_STREAM = 7;

async function expectAck(stream: ReturnType<typeof openPingStream>, seq: bigint) {
  const [ping] = pingTrack(1, { startSeq: seq });
  if (!ping) throw new Error("unreachable");
  stream.send(ping);
  const response = await stream.next();
  expect(response.event.case).toBe("ack");
}

describe("calls per rider (INGEST_MAX_STREAMS_PER_RIDER)", () => {
  test("past the cap a rider's call is ResourceExhausted on every protocol; a closed call frees its slot", async () => {
    const token = await testToken(uniqueId("rider"), "rider", "london");
    const first = openPingStream(fixture.ingest.grpc, token);
    const second = openPingStream(fixture.ingest.connect, token);
    await expectAck(first, 1n);
    await expectAck(second, 2n);

    for (const client of [fixture.ingest.grpc, fixture.ingest.connect]) {
      const third = openPingStream(client, token);
      const error = await third.next().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
      expect((error as ConnectError).rawMessage).toContain("already has 2 calls open");
    }
    for (const client of [fixture.ingest.grpc, fixture.ingest.http1]) {
      const unary = await client
        .sendPing({ ping: pingTrack(1, { startSeq: 9n })[0] }, bearer(token))
        .catch((caught: unknown) => caught);
      expect((unary as ConnectError).code).toBe(Code.ResourceExhausted);
    }
    // Another rider is not affected.
    const other = openPingStream(
      fixture.ingest.grpc,
      await testToken(uniqueId("rider"), "rider", "london"),
    );
    await expectAck(other, 1n);

    await first.finish();
    const again = openPingStream(fixture.ingest.grpc, token);
    await expectAck(again, 3n);
    await Promise.all([second.finish(), again.finish(), other.finish()]);
    const metrics = await fixture.ingest.app.registry.getSingleMetricAsString(
      "edge_ingest_limit_hits_total",
    );
    expect(metrics).toMatch(/limit="rider_streams"[^\n]* 4$/m);
  });
});

describe("streams per connection (INGEST_MAX_STREAMS_PER_CONNECTION)", () => {
  test("the cap is advertised in SETTINGS; a client that ignores it gets REFUSED_STREAM past it", async () => {
    const session = http2.connect(fixture.ingest.grpcUrl);
    const settings = await new Promise<http2.Settings>((resolve) =>
      session.once("remoteSettings", resolve),
    );
    expect(settings.maxConcurrentStreams).toBe(3);
    session.close();

    // Five streams at once from a client that does not wait, each a different rider.
    const raw = await openRawH2(fixture.ingest.app.grpcPort);
    raw.handshake();
    await raw.frame((f) => f.type === FRAME.SETTINGS);
    for (let i = 0; i < 5; i++) {
      const token = await testToken(uniqueId("rider"), "rider", "london");
      raw.socket.write(grpcHeadersFrame(1 + 2 * i, STREAM_PINGS, token));
    }
    const refused = [7, 9].map((id) =>
      raw.frame((f) => f.type === FRAME.RST_STREAM && f.streamId === id),
    );
    for (const frame of await Promise.all(refused)) expect(errorCodeOf(frame)).toBe(REFUSED_STREAM);
    // The first three are open and served: each answers a ping.
    const [ping] = pingTrack(1);
    if (!ping) throw new Error("unreachable");
    const body = grpcFrame(
      toBinary(StreamPingsRequestSchema, create(StreamPingsRequestSchema, { ping })),
    );
    for (const id of [1, 3, 5]) raw.socket.write(dataFrame(id, body));
    for (const id of [1, 3, 5]) {
      await raw.frame((f) => f.type === FRAME.DATA && f.streamId === id && f.payload.length > 5);
    }
    raw.destroy();
  });
});
