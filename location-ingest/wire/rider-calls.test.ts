import { describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { encodeRiderInboxMessage } from "../../core/messages/rider-inbox";
import { keys } from "../../core/redis/keys";
import {
  LocationIngestService,
  StreamPingsRequestSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { bearer, pingTrack, useIngestOnRedis } from "../../test/support/ingest";
import { testOffer } from "../../test/support/orders";
import { openPingStream } from "../../test/support/ping-stream";
import { grpcFrame } from "../../test/support/raw-grpc";
import {
  dataFrame,
  errorCodeOf,
  FRAME,
  grpcHeadersFrame,
  openRawH2,
} from "../../test/support/raw-h2";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";

const fixture = useIngestOnRedis({
  INGEST_MAX_CALLS_PER_RIDER: "2",
  INGEST_MAX_STREAMS_PER_CONNECTION: "3",
});
const STREAM_PINGS = "/delivery.tracking.v1.LocationIngestService/StreamPings";
const SEND_PING = "/delivery.tracking.v1.LocationIngestService/SendPing";
const REFUSED_STREAM = 7;
async function expectAck(stream: ReturnType<typeof openPingStream>, seq: bigint) {
  const [ping] = pingTrack(1, { startSeq: seq });
  if (!ping) throw new Error("unreachable");
  stream.send(ping);
  const response = await stream.next();
  expect(response.event.case).toBe("ack");
}

/** An upload that sends one fresh ping and stays open until `finish`. */
function openUpload(client: Client<typeof LocationIngestService>, token: string, seq: bigint) {
  let finish = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  async function* requests() {
    yield { pings: pingTrack(1, { startSeq: seq }) };
    await done;
  }
  const result = client.uploadPings(requests(), bearer(token));
  return { result, finish };
}

/** How many of the rider's pings the location log (the Redis stream here) holds. */
const loggedPings = async (riderId: string) =>
  (await fixture.db.xrange(keys.locationLog("london"), "-", "+")).filter(
    ([, fields]) => fields[fields.indexOf("rider") + 1] === riderId,
  ).length;

describe("calls per rider beside its StreamPings (INGEST_MAX_CALLS_PER_RIDER)", () => {
  test("past the cap a rider's upload or unary call is ResourceExhausted on every protocol; its StreamPings still opens; a finished call frees its slot", async () => {
    const riderId = uniqueId("rider");
    const token = await testToken(riderId, "rider", "london");
    const uploads = [
      openUpload(fixture.ingest.grpc, token, 1n),
      openUpload(fixture.ingest.connect, token, 2n),
    ];
    // Each upload's ping reaches the location log once its call is in: both hold their slot.
    await waitUntil(async () => (await loggedPings(riderId)) === 2);
    // Each refusal says when to try again: a Connect header, a gRPC (or gRPC-Web) trailer.
    const expectRefused = (caught: unknown) => {
      expect(caught).toBeInstanceOf(ConnectError);
      expect((caught as ConnectError).code).toBe(Code.ResourceExhausted);
      expect((caught as ConnectError).rawMessage).toContain("already has 2 uploads or unary calls");
      expect((caught as ConnectError).metadata.get("retry-after")).toBe("2");
    };
    for (const client of [fixture.ingest.grpc, fixture.ingest.connect]) {
      expectRefused(await openUpload(client, token, 7n).result.catch((caught: unknown) => caught));
    }
    const grpcWebHttp1 = createClient(
      LocationIngestService,
      createGrpcWebTransport({ baseUrl: fixture.ingest.httpUrl, httpVersion: "1.1" }),
    );
    for (const client of [
      fixture.ingest.grpc,
      fixture.ingest.connect,
      fixture.ingest.http1,
      grpcWebHttp1,
    ]) {
      const unary = await client
        .sendPing({ ping: pingTrack(1, { startSeq: 9n })[0] }, bearer(token))
        .catch((caught: unknown) => caught);
      expectRefused(unary);
    }
    // Plain HTTP/1.1: a declared length (the lean path) and a chunked body (connect-node).
    const body = JSON.stringify({ ping: { lat: 51.5, lng: -0.12, seq: "12" } });
    for (const chunked of [false, true]) {
      const response = await fetch(`${fixture.ingest.httpUrl}${SEND_PING}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: chunked ? new Blob([body]).stream() : body,
      });
      expect(response.status).toBe(429);
      expect(response.headers.get("retry-after")).toBe("2");
      expect(((await response.json()) as { code: string }).code).toBe("resource_exhausted");
    }
    // The live stream beside the uploads is not capped.
    const stream = openPingStream(fixture.ingest.grpc, token);
    await expectAck(stream, 10n);
    // Another rider is not affected.
    const other = openPingStream(
      fixture.ingest.grpc,
      await testToken(uniqueId("rider"), "rider", "london"),
    );
    await expectAck(other, 1n);

    uploads[0]?.finish();
    expect((await uploads[0]?.result)?.acceptedCount).toBe(1);
    const unary = await fixture.ingest.http1.sendPing(
      { ping: pingTrack(1, { startSeq: 11n })[0] },
      bearer(token),
    );
    expect(unary.ack?.dropped).toEqual([]);
    uploads[1]?.finish();
    await uploads[1]?.result;
    await Promise.all([stream.finish(), other.finish()]);
    const metrics = await fixture.ingest.app.registry.getSingleMetricAsString(
      "edge_ingest_limit_hits_total",
    );
    expect(metrics).toMatch(/limit="rider_calls"[^\n]* 8$/m);
  });
});

describe("one live StreamPings per rider", () => {
  test.each(["grpc", "connect"] as const)(
    "a newer StreamPings (%s) supersedes the older one on this node: it ends FAILED_PRECONDITION, the new one gets the offers",
    async (protocol) => {
      const riderId = uniqueId("rider");
      const token = await testToken(riderId, "rider", "london");
      const first = openPingStream(fixture.ingest.grpc, token);
      await expectAck(first, 1n);
      const second = openPingStream(fixture.ingest[protocol], token);
      await expectAck(second, 2n);
      const error = (await first.ended) as ConnectError;
      expect(error).toBeInstanceOf(ConnectError);
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toContain("must not reconnect");
      await fixture.db.publish(keys.riderInbox(riderId), encodeRiderInboxMessage(testOffer("o1")));
      const offer = await second.next();
      expect(offer.event.case).toBe("offer");
      await expectAck(second, 3n);
      await second.finish();
    },
  );
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
