import { describe, expect, test } from "bun:test";
import { create, fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { parseStoredPosition } from "../core/position/position-forms";
import { keys } from "../core/redis/keys";
import { GeoPingSchema } from "../proto/gen/delivery/tracking/v1/geo_pb";
import { DropReason } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { LocationRecordSchema } from "../proto/gen/delivery/tracking/v1/location_record_pb";
import { TrackingEventSchema } from "../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { bearer, pingTrack, useIngestOnRedis } from "../test/support/ingest";
import { seedOrder } from "../test/support/orders";
import { openPingStream } from "../test/support/ping-stream";
import { testToken, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

const fixture = useIngestOnRedis();

async function riderToken(riderId: string, city = "london") {
  return testToken(riderId, "rider", city);
}

describe("StreamPings", () => {
  test.each(["grpc", "connect"] as const)(
    "pings over %s land in GEOSEARCH, the last position and the order's channel",
    async (protocol) => {
      const riderId = uniqueId("rider");
      const orderId = uniqueId("order");
      await seedOrder(fixture.db, { orderId, customerId: "c1", riderId });
      const subscriber = new Redis(fixture.redis.url);
      const frames: string[] = [];
      await subscriber.subscribe(keys.orderTrack(orderId));
      subscriber.on("message", (_channel, message) => frames.push(message));

      const stream = openPingStream(fixture.ingest[protocol], await riderToken(riderId));
      const track = pingTrack(3, { lat: 51.5074, lng: -0.1278 });
      for (const ping of track) {
        stream.send(ping);
        const response = await stream.next();
        expect(response.event.case).toBe("ack");
        if (response.event.case !== "ack") throw new Error("unreachable");
        expect(response.event.value.dropped).toEqual([]);
        expect(response.event.value.lastAcceptedSeq).toBe(ping.seq);
        expect(response.event.value.nextIntervalMs).toBeGreaterThan(0);
      }
      await stream.finish();

      const nearby = await fixture.db.geosearch(
        keys.cityRiders("london"),
        "FROMLONLAT",
        -0.1278,
        51.5074,
        "BYRADIUS",
        200,
        "m",
      );
      expect(nearby).toContain(riderId);
      const position = parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)));
      expect(position?.seq).toBe(3n);
      expect(position?.lat).toBeCloseTo(track[2]?.lat ?? 0, 9);
      await waitUntil(() => frames.length === 3);
      const parsed = frames.map((frame) => fromJsonString(TrackingEventSchema, frame));
      expect(parsed.map(({ event }) => event.case === "position" && event.value.seq)).toEqual([
        1n,
        2n,
        3n,
      ]);
      expect(parsed[0]?.orderId).toBe(orderId);
      expect(parsed[0]?.event.value).toMatchObject({ riderId, lat: track[0]?.lat });
      subscriber.disconnect();
    },
  );

  test("each bad ping is dropped with its reason and the stream stays open", async () => {
    const riderId = uniqueId("rider");
    const stream = openPingStream(fixture.ingest.grpc, await riderToken(riderId));
    const now = Date.now();
    const good = (seq: number, lat = 51.5) =>
      create(GeoPingSchema, {
        lat,
        lng: -0.12,
        accuracyM: 5,
        recordedAtMs: BigInt(now),
        seq: BigInt(seq),
      });
    const cases: [ReturnType<typeof good>, DropReason | undefined][] = [
      [good(10), undefined],
      [{ ...good(11), lat: Number.NaN }, DropReason.INVALID_COORDINATES],
      [{ ...good(12), lng: 200 }, DropReason.INVALID_COORDINATES],
      [{ ...good(13), recordedAtMs: BigInt(now + 60_000) }, DropReason.FUTURE_TIMESTAMP],
      [{ ...good(14), recordedAtMs: BigInt(now - 3_600_000) }, DropReason.STALE_TIMESTAMP],
      [good(10), DropReason.OUT_OF_ORDER],
      [good(9), DropReason.OUT_OF_ORDER],
      [good(15, 52.5), DropReason.TELEPORT],
      [{ ...good(16), accuracyM: 900 }, DropReason.POOR_ACCURACY],
      [good(17), undefined],
    ];
    for (const [ping, reason] of cases) {
      stream.send(ping);
      const response = await stream.next();
      if (response.event.case !== "ack")
        throw new Error(`expected an ack, got ${response.event.case}`);
      const dropped = response.event.value.dropped;
      expect(dropped.map((d) => d.reason)).toEqual(reason === undefined ? [] : [reason]);
      if (reason !== undefined) expect(dropped[0]?.seq).toBe(ping.seq);
    }
    await stream.finish();
    const metrics = await fixture.ingest.app.registry.getSingleMetricAsString(
      "edge_ingest_pings_dropped_total",
    );
    for (const label of [
      "invalid_coordinates",
      "future_timestamp",
      "stale_timestamp",
      "out_of_order",
      "teleport",
      "poor_accuracy",
    ]) {
      expect(metrics).toContain(`reason="${label}"`);
    }
  });

  test("a rider's ordering check survives a reconnect (seeded from Redis)", async () => {
    const riderId = uniqueId("rider");
    const token = await riderToken(riderId);
    const [first, second] = pingTrack(2, { startSeq: 100n });
    if (!first || !second) throw new Error("unreachable");
    const one = openPingStream(fixture.ingest.grpc, token);
    one.send(first);
    await one.next();
    await one.finish();
    const two = openPingStream(fixture.ingest.grpc, token);
    two.send({ ...first, seq: 100n });
    const replay = await two.next();
    if (replay.event.case !== "ack") throw new Error("expected an ack");
    expect(replay.event.value.dropped[0]?.reason).toBe(DropReason.OUT_OF_ORDER);
    expect(replay.event.value.lastAcceptedSeq).toBe(100n);
    two.send(second);
    const next = await two.next();
    if (next.event.case !== "ack") throw new Error("expected an ack");
    expect(next.event.value.dropped).toEqual([]);
    await two.finish();
  });
});

describe("authentication", () => {
  const expectCode = async (call: Promise<unknown>, code: Code) => {
    const error = await call.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(code);
  };

  test("missing, forged, expired and alg:none tokens are Unauthenticated; other roles PermissionDenied", async () => {
    const [ping] = pingTrack(1);
    if (!ping) throw new Error("unreachable");
    const exp = Math.floor(Date.now() / 1000) + 60;
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const unsigned = `${b64({ alg: "none" })}.${b64({ sub: "r1", role: "rider", city: "london", exp })}.`;
    const forged = `${(await riderToken("r1")).slice(0, -4)}AAAA`;
    const expired = await testToken("r1", "rider", "london", -60);
    for (const client of [fixture.ingest.grpc, fixture.ingest.connect, fixture.ingest.http1]) {
      await expectCode(client.sendPing({ ping }), Code.Unauthenticated);
      for (const token of [unsigned, forged, expired]) {
        await expectCode(client.sendPing({ ping }, bearer(token)), Code.Unauthenticated);
      }
      await expectCode(
        client.sendPing({ ping }, bearer(await testToken("c1", "customer"))),
        Code.PermissionDenied,
      );
    }
    for (const client of [fixture.ingest.grpc, fixture.ingest.connect]) {
      const stream = openPingStream(client, unsigned);
      stream.send(ping);
      await expectCode(stream.next(), Code.Unauthenticated);
      const customer = openPingStream(client, await testToken("c1", "customer"));
      customer.send(ping);
      await expectCode(customer.next(), Code.PermissionDenied);
    }
  });
});

describe("SendPing and UploadPings", () => {
  test("SendPing as Connect JSON over HTTP/1.1 stores the ping and acks it", async () => {
    const riderId = uniqueId("rider");
    const [ping] = pingTrack(1, { startSeq: 7n });
    const response = await fixture.ingest.http1.sendPing(
      { ping },
      bearer(await riderToken(riderId)),
    );
    expect(response.ack?.lastAcceptedSeq).toBe(7n);
    expect(parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.seq).toBe(7n);
    // The same call by hand, as curl would send it.
    const raw = await fetch(
      `${fixture.ingest.httpUrl}/delivery.tracking.v1.LocationIngestService/SendPing`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${await riderToken(riderId)}`,
        },
        body: JSON.stringify({
          ping: {
            lat: 51.5075,
            lng: -0.1278,
            accuracyM: 5,
            recordedAtMs: String(Date.now()),
            seq: "8",
          },
        }),
      },
    );
    expect(raw.status).toBe(200);
    expect((await raw.json()).ack.lastAcceptedSeq).toBe("8");
  });

  test("an offline backlog is logged in order; only fresh pings become the live position", async () => {
    const riderId = uniqueId("rider");
    const orderId = uniqueId("order");
    await seedOrder(fixture.db, { orderId, customerId: "c1", riderId });
    const now = Date.now();
    const backlog = Array.from({ length: 50 }, (_, i) =>
      create(GeoPingSchema, {
        lat: 51.5 + i * 0.0001,
        lng: -0.12,
        accuracyM: 5,
        // 49 pings from ten minutes ago, then one from just now.
        recordedAtMs: BigInt(i < 49 ? now - 600_000 + i * 1_000 : now),
        seq: BigInt(1_000 + i),
      }),
    );
    const tenth = backlog[10];
    if (!tenth) throw new Error("unreachable");
    const duplicate = create(GeoPingSchema, { ...tenth, seq: 1_005n });
    const subscriber = new Redis(fixture.redis.url);
    const frames: string[] = [];
    await subscriber.subscribe(keys.orderTrack(orderId));
    subscriber.on("message", (_c, m) => frames.push(m));
    async function* upload() {
      yield { pings: backlog.slice(0, 20) };
      yield { pings: [duplicate, ...backlog.slice(20)] };
    }
    const result = await fixture.ingest.grpc.uploadPings(
      upload(),
      bearer(await riderToken(riderId)),
    );
    expect(result.acceptedCount).toBe(50);
    expect(result.dropped.map((d) => [d.seq, d.reason])).toEqual([
      [1_005n, DropReason.OUT_OF_ORDER],
    ]);
    expect(result.lastAcceptedSeq).toBe(1_049n);
    expect(parseStoredPosition(await fixture.db.get(keys.riderPosition(riderId)))?.seq).toBe(1049n);

    const entries = await fixture.db.xrangeBuffer(keys.locationLog("london"), "-", "+");
    const mine = entries
      .map(([, fields]) => fromBinary(LocationRecordSchema, fields[3] as Buffer))
      .filter((record) => record.riderId === riderId);
    expect(mine.map((record) => Number(record.ping?.seq))).toEqual(
      backlog.map((p) => Number(p.seq)),
    );
    expect(mine.every((record) => record.backfill)).toBe(true);
    // Only the fresh ping reached the live map.
    await waitUntil(() => frames.length >= 1);
    expect(frames.map((f) => JSON.parse(f).position.seq)).toEqual(["1049"]);
    subscriber.disconnect();
  });
});

describe("health and metrics", () => {
  test("/healthz, /readyz and /metrics answer; unknown paths get the JSON error shape", async () => {
    expect((await fetch(`${fixture.ingest.httpUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${fixture.ingest.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${fixture.ingest.httpUrl}/metrics`)).text();
    expect(metrics).toContain("edge_ingest_pings_accepted_total");
    expect(metrics).toContain("edge_ingest_write_latency_seconds_bucket");
    const missing = await fetch(`${fixture.ingest.httpUrl}/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe("not_found");
  });
});
