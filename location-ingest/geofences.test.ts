import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import type { LatLng } from "../core/geo";
import { keys } from "../core/redis/keys";
import { type GeoPing, GeoPingSchema } from "../proto/gen/delivery/tracking/v1/geo_pb";
import { useIngestOnRedis } from "../test/support/ingest";
import { orderOutboxEvents, seedOrder, trackingEventJson } from "../test/support/orders";
import { openPingStream } from "../test/support/ping-stream";
import { DROPOFF, north, PICKUP } from "../test/support/positions";
import { testToken, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

describe("geofences in the ingest (automatic status on)", () => {
  const fixture = useIngestOnRedis({ GEOFENCE_AUTO_STATUS: "true" });
  let db: Redis;
  beforeAll(() => {
    db = new Redis(fixture.redis.url);
  });
  afterAll(() => db?.disconnect());

  /** Pings one second apart along `points`, the last one now. */
  function drive(points: LatLng[], startSeq: bigint): GeoPing[] {
    const now = Date.now();
    return points.map((point, i) =>
      create(GeoPingSchema, {
        ...point,
        accuracyM: 5,
        speedMps: 10,
        recordedAtMs: BigInt(now - (points.length - 1 - i) * 1_000),
        seq: startSeq + BigInt(i),
      }),
    );
  }

  async function streamAlong(riderId: string, points: LatLng[]): Promise<void> {
    const stream = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
    for (const ping of drive(points, 1n)) {
      stream.send(ping);
      const response = await stream.next();
      expect(response.event.case).toBe("ack");
    }
    await stream.finish();
  }

  async function watch(orderId: string) {
    const subscriber = new Redis(fixture.redis.url);
    const frames: Record<string, unknown>[] = [];
    await subscriber.subscribe(keys.orderTrack(orderId));
    subscriber.on("message", (_channel, message) => {
      const frame = trackingEventJson(message);
      if (!frame.position) frames.push(frame);
    });
    return { frames, stop: () => subscriber.disconnect() };
  }

  test("a rider leaving the restaurant with a READY order moves it to PICKED_UP, and watchers hear both", async () => {
    const riderId = uniqueId("rider");
    const orderId = uniqueId("order");
    await seedOrder(db, { orderId, customerId: "c1", riderId, status: "READY" });
    const watcher = await watch(orderId);
    await streamAlong(
      riderId,
      [0, 10, 40, 80, 120, 160].map((m) => north(PICKUP, m)),
    );
    await waitUntil(async () => (await db.hget(keys.order(orderId), "status")) === "PICKED_UP");
    await waitUntil(async () => watcher.frames.length === 2);
    watcher.stop();
    expect(watcher.frames).toEqual([
      {
        orderId,
        geofence: { fence: "FENCE_LEFT_PICKUP", riderId, atMs: expect.stringMatching(/^\d+$/) },
      },
      { orderId, status: { status: "PICKED_UP", version: "3", riderId } },
    ]);
  });

  test("arriving at the drop-off while carrying the order is an event; the status stays the rider's call", async () => {
    const riderId = uniqueId("rider");
    const orderId = uniqueId("order");
    await seedOrder(db, { orderId, customerId: "c1", riderId, status: "PICKED_UP" });
    const watcher = await watch(orderId);
    await streamAlong(
      riderId,
      [-200, -160, -120, -80, -40, 0].map((m) => north(DROPOFF, m)),
    );
    await waitUntil(async () => watcher.frames.length === 1);
    watcher.stop();
    expect(watcher.frames[0]).toMatchObject({ geofence: { fence: "FENCE_ENTERED_DROPOFF" } });
    expect(await db.hget(keys.order(orderId), "status")).toBe("PICKED_UP");
  });

  test("leaving the restaurant before the food is READY changes nothing", async () => {
    const riderId = uniqueId("rider");
    const orderId = uniqueId("order");
    await seedOrder(db, { orderId, customerId: "c1", riderId, status: "ASSIGNED" });
    await streamAlong(
      riderId,
      [0, 40, 80, 120, 160].map((m) => north(PICKUP, m)),
    );
    const crossings = fixture.ingest.app.metrics.geofenceCrossings;
    await waitUntil(async () =>
      (await crossings.get()).values.some(
        (value) => value.labels.outcome === "not_applicable" && value.value >= 1,
      ),
    );
    expect(await db.hmget(keys.order(orderId), "status", "version")).toEqual(["ASSIGNED", "2"]);
    expect(await orderOutboxEvents(db, orderId)).toEqual([]);
  });
});
