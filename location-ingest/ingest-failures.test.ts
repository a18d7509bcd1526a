import { describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { encodeRiderInboxMessage } from "../core/messages/rider-inbox";
import { keys } from "../core/redis/keys";
import { DropReason, StreamPingsRequestSchema } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { bearer, pingTrack, startTestIngest, useIngestOnRedis } from "../test/support/ingest";
import { openPingStream } from "../test/support/ping-stream";
import { grpcFrame, rawGrpcCall } from "../test/support/raw-grpc";
import { startRedis } from "../test/support/redis-server";
import { testToken, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

const STREAM_PINGS = "/delivery.tracking.v1.LocationIngestService/StreamPings";
const fixture = useIngestOnRedis();

describe("bad bytes end only their own call", () => {
  test("a malformed message is InvalidArgument, an oversized one ResourceExhausted; a neighbour stream carries on", async () => {
    const riderId = uniqueId("rider");
    const token = await testToken(riderId, "rider", "london");
    const neighbour = openPingStream(
      fixture.ingest.grpc,
      await testToken(uniqueId("rider"), "rider", "london"),
    );
    const [first, second] = pingTrack(2);
    if (!first || !second) throw new Error("unreachable");
    neighbour.send(first);
    expect((await neighbour.next()).event.case).toBe("ack");

    const session = http2.connect(fixture.ingest.grpcUrl);
    const good = toBinary(
      StreamPingsRequestSchema,
      create(StreamPingsRequestSchema, { ping: first }),
    );
    // A valid ping, then a field tag with a truncated varint: protobuf cannot parse it.
    const malformed = await rawGrpcCall(
      session,
      STREAM_PINGS,
      token,
      Buffer.concat([grpcFrame(good), grpcFrame(Buffer.from([0x0a, 0xff]))]),
    );
    expect(malformed.status).toBe(String(Code.InvalidArgument));
    const oversized = await rawGrpcCall(
      session,
      STREAM_PINGS,
      token,
      grpcFrame(new Uint8Array(16), 10 * 1024 * 1024),
    );
    expect(oversized.status).toBe(String(Code.ResourceExhausted));
    const truncated = await rawGrpcCall(
      session,
      STREAM_PINGS,
      token,
      grpcFrame(good).subarray(0, 8),
    );
    expect(truncated.status).toBe(String(Code.InvalidArgument));
    session.close();

    // The same inputs through connect-node (Connect protocol) end their call likewise.
    const huge = openPingStream(fixture.ingest.connect, token);
    huge.send({ ...first, $unknown: [{ no: 99, wireType: 2, data: new Uint8Array(8 * 1024) }] });
    const error = await huge.next().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);

    neighbour.send(second);
    const ack = await neighbour.next();
    expect(ack.event.case === "ack" && ack.event.value.dropped.length).toBe(0);
    await neighbour.finish();
  });

  test("a request without a ping ends the stream with InvalidArgument", async () => {
    const stream = openPingStream(
      fixture.ingest.grpc,
      await testToken(uniqueId("rider"), "rider", "london"),
    );
    stream.send(undefined as never);
    const error = await stream.next().catch((caught: unknown) => caught);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
  });
});

describe("offers", () => {
  test("an offer published to the rider's inbox goes down that rider's stream only", async () => {
    const riderId = uniqueId("rider");
    const other = openPingStream(
      fixture.ingest.grpc,
      await testToken(uniqueId("rider"), "rider", "london"),
    );
    const stream = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
    const [ping] = pingTrack(1);
    if (!ping) throw new Error("unreachable");
    stream.send(ping);
    other.send(ping);
    await stream.next();
    await other.next();
    const publisher = new Redis(fixture.redis.url);
    const channel = keys.riderInbox(riderId);
    // The subscription is made when the stream opens; wait until Redis has it.
    const deadline = Date.now() + 3_000;
    while (Number((await publisher.pubsub("NUMSUB", channel))[1]) < 1) {
      if (Date.now() > deadline) throw new Error("inbox never subscribed");
      await Bun.sleep(10);
    }
    const offer = {
      type: "offer" as const,
      orderId: "o-1",
      fencingToken: "o-1:7",
      restaurantId: "rest-1",
      pickup: { lat: 51.5, lng: -0.12 },
      dropoff: { lat: 51.51, lng: -0.1 },
      expiresAtMs: Date.now() + 30_000,
    };
    await publisher.publish(channel, "not json");
    await publisher.publish(channel, encodeRiderInboxMessage(offer));
    const response = await stream.next();
    expect(response.event.case).toBe("offer");
    if (response.event.case !== "offer") throw new Error("unreachable");
    expect(response.event.value).toMatchObject({
      orderId: "o-1",
      fencingToken: "o-1:7",
      restaurantId: "rest-1",
    });
    expect(response.event.value.pickup).toMatchObject({ lat: 51.5, lng: -0.12 });
    await stream.finish();
    await other.finish();
    await expect(other.next()).rejects.toThrow();
    publisher.disconnect();
  });
});

describe("Redis outage", () => {
  test("pings are dropped as unavailable while Redis is down, the stream stays open and writes resume", async () => {
    const ownRedis = await startRedis();
    const own = await startTestIngest({ REDIS_URL: ownRedis.url });
    try {
      const riderId = uniqueId("rider");
      const stream = openPingStream(own.grpc, await testToken(riderId, "rider", "london"));
      const track = pingTrack(40);
      let index = 0;
      const sendNext = async () => {
        const ping = track[index++];
        if (!ping) throw new Error("ran out of pings");
        stream.send(ping);
        const response = await stream.next();
        if (response.event.case !== "ack") throw new Error("expected an ack");
        return response.event.value;
      };
      expect((await sendNext()).dropped).toEqual([]);
      await ownRedis.kill();
      const duringOutage = await sendNext();
      expect(duringOutage.dropped.map((d) => d.reason)).toEqual([DropReason.UNAVAILABLE]);
      await ownRedis.restart();
      // The ingest reconnects by itself (capped backoff); readiness tells when.
      await waitUntil(
        async () => (await fetch(`${own.httpUrl}/readyz`)).status === 200,
        10_000,
        "ingest ready again",
      );
      const ack = await sendNext();
      expect(ack.dropped).toEqual([]);
      expect(ack.lastAcceptedSeq).toBe(BigInt(index));
      const db = new Redis(ownRedis.url);
      expect(await db.geopos(keys.cityRiders("london"), riderId)).toHaveLength(1);
      db.disconnect();
      await stream.finish();
      const ready = await fetch(`${own.httpUrl}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      await own.stop();
      await ownRedis.stop();
    }
  });

  test("readiness says 503 with the reason while Redis is down", async () => {
    const ownRedis = await startRedis();
    const own = await startTestIngest({ REDIS_URL: ownRedis.url });
    try {
      await ownRedis.kill();
      const response = await fetch(`${own.httpUrl}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ reason: "redis unavailable" });
      // The unary fallback still answers, reporting the drop.
      const unary = await own.grpc.sendPing(
        { ping: pingTrack(1)[0] },
        bearer(await testToken(uniqueId("rider"), "rider", "london")),
      );
      expect(unary.ack?.dropped.map((d) => d.reason)).toEqual([DropReason.UNAVAILABLE]);
    } finally {
      await own.stop();
      await ownRedis.stop();
    }
  });
});
