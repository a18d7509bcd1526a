import { beforeAll, describe, expect, test } from "bun:test";
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import pino from "pino";
import { statusEventJson } from "../core/messages/tracking-events";
import { TRACKING_SUBPROTOCOLS } from "../core/protocol/tracking-protocol";
import { connectRedis, type RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { recordGeofence, transitionOrder } from "../core/redis/order-scripts";
import {
  type TrackingEvent,
  TrackingEventSchema,
} from "../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { pingTrack, useIngestOnRedis } from "../test/support/ingest";
import { seedOrder } from "../test/support/orders";
import { openPingStream } from "../test/support/ping-stream";
import { testToken, uniqueId } from "../test/support/tokens";
import {
  openWatcher,
  refusalStatus,
  startTestTracking,
  type TestTrackingNode,
} from "../test/support/tracking";

const fixture = useIngestOnRedis(
  {},
  {
    stopFirst: async () => {
      await nodeA?.stop();
      await nodeB?.stop();
      await connection?.close();
    },
  },
);
let connection: RedisConnection;
let nodeA: TestTrackingNode;
let nodeB: TestTrackingNode;

beforeAll(async () => {
  connection = await connectRedis(
    { mode: "standalone", url: fixture.redis.url },
    "tracking-app-test",
    pino({ level: "silent" }),
  );
  // One customer holds (and opens at once) the 1,000 sockets of the subscription test.
  const env = {
    REDIS_URL: fixture.redis.url,
    TRACKING_MAX_SOCKETS_PER_USER: "1000",
    TRACKING_MAX_WATCH_ATTEMPTS_PER_USER: "10000",
  };
  nodeA = await startTestTracking(env);
  nodeB = await startTestTracking(env);
  // Both rings must see both nodes before ownership means anything.
  await Promise.all(
    [nodeA.app, nodeB.app].map((app) =>
      waitUntil(async () => {
        await app.ring.refresh();
        return app.ring.nodes().length === 2;
      }),
    ),
  );
});

async function waitUntil(
  condition: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await Bun.sleep(10);
  }
}

/** A fresh order with a rider, and which node owns and which does not. */
async function newOrder() {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  const ownerId = nodeA.app.ring.ownerOf(orderId)?.id;
  const [owner, other] = ownerId === nodeA.id ? [nodeA, nodeB] : [nodeB, nodeA];
  const path = `/v1/orders/${orderId}/track`;
  return { orderId, customerId, riderId, owner, other, path };
}

describe("live tracking end to end", () => {
  test("pings streamed into the ingest reach the watching customer in seq order, after the snapshot", async () => {
    const { orderId, customerId, riderId, owner, path } = await newOrder();
    const rider = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
    const track = pingTrack(5);
    // One ping before anyone watches: it is the snapshot's last position.
    rider.send(track[0] as never);
    await rider.next();
    const watcher = await openWatcher(`${owner.url}${path}`, {
      headers: { authorization: `Bearer ${await testToken(customerId, "customer")}` },
    });
    await watcher.waitForFrames(2);
    expect(watcher.frames[0]).toMatchObject({
      type: "status",
      orderId,
      status: "ASSIGNED",
      version: 2,
      riderId,
    });
    expect(watcher.frames[1]).toMatchObject({ type: "position", orderId, riderId, seq: 1 });
    for (const ping of track.slice(1)) {
      rider.send(ping);
      await rider.next();
    }
    await watcher.waitForFrames(6);
    expect(watcher.frames.slice(1).map((f) => (f as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);
    await rider.finish();
    watcher.close();
  });

  test("protobuf watchers get TrackingEvent frames; ?afterSeq= skips what the client already has", async () => {
    const { orderId, customerId, riderId, owner, path } = await newOrder();
    const rider = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
    rider.send(pingTrack(1, { startSeq: 41n })[0] as never);
    await rider.next();
    const token = await testToken(customerId, "customer");
    const proto = await openWatcher(`${owner.url}${path}`, {
      protocols: ["tracking.v1.proto", `bearer.${token}`],
      binary: (bytes) => fromBinary(TrackingEventSchema, bytes),
    });
    expect(proto.protocol).toBe("tracking.v1.proto");
    await proto.waitForFrames(2);
    const [status, position] = proto.frames as ReturnType<
      typeof fromBinary<typeof TrackingEventSchema>
    >[];
    expect(status?.event.case === "status" && status.event.value.status).toBe("ASSIGNED");
    expect(position?.orderId).toBe(orderId);
    expect(position?.event.case === "position" && position.event.value.seq).toBe(41n);
    // A reconnect that already has seq 41 gets the status but not the same position again.
    const again = await openWatcher(`${owner.url}${path}?afterSeq=41&access_token=${token}`);
    await again.waitForFrames(1);
    rider.send(pingTrack(1, { startSeq: 42n })[0] as never);
    await rider.next();
    await again.waitForFrames(2);
    expect(again.frames.map((f) => (f as { type: string; seq?: number }).seq ?? "status")).toEqual([
      "status",
      42,
    ]);
    await rider.finish();
    proto.close();
    again.close();
  });
});

describe("frame formats", () => {
  test("every real frame of tracking.v2.json parses with the generated TrackingEvent and equals the tracking.v1.proto frame of the same event", async () => {
    const { orderId, customerId, riderId, owner, other, path } = await newOrder();
    const token = await testToken(customerId, "customer");
    const open = (url: string, protocol: string) =>
      openWatcher(`${url}${path}`, {
        protocols: [protocol, `bearer.${token}`],
        binary: (bytes) => fromBinary(TrackingEventSchema, bytes),
      });
    const json = await open(owner.url, TRACKING_SUBPROTOCOLS.json);
    const proto = await open(owner.url, TRACKING_SUBPROTOCOLS.proto);
    expect([json.protocol, proto.protocol]).toEqual(["tracking.v2.json", "tracking.v1.proto"]);
    const rider = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
    // A seq past 2^53, which only strings carry exactly in JSON.
    for (const ping of pingTrack(2, { startSeq: 2n ** 63n + 5n })) {
      rider.send(ping);
      await rider.next();
    }
    await rider.finish();
    await transitionOrder(connection, {
      orderId,
      expectedVersion: 2,
      to: "READY",
      legalFrom: ["ASSIGNED"],
    });
    await recordGeofence(connection, {
      orderId,
      riderId,
      fence: "left_pickup",
      atMs: Date.now(),
      autoStatus: true,
    });
    // status, two positions, READY, the geofence and PICKED_UP
    await Promise.all([json.waitForFrames(6), proto.waitForFrames(6)]);
    const fromProto = proto.frames as TrackingEvent[];
    // The JSON watcher's frames are text: parse them with the generated type, strictly.
    const textFrames = json.rawFrames as string[];
    expect(textFrames.map((text) => fromJsonString(TrackingEventSchema, text))).toEqual(fromProto);
    const cases = fromProto.map((event) => event.event.case);
    expect(cases).toEqual(["status", "position", "position", "status", "geofence", "status"]);
    const position = fromProto[2]?.event;
    expect(position?.case === "position" && position.value.seq).toBe(2n ** 63n + 6n);
    // `moved`, from the node that does not own the order.
    const movedJson = await open(other.url, TRACKING_SUBPROTOCOLS.json);
    const movedProto = await open(other.url, TRACKING_SUBPROTOCOLS.proto);
    await Promise.all([movedJson.closed, movedProto.closed]);
    expect(
      (movedJson.rawFrames as string[]).map((text) => fromJsonString(TrackingEventSchema, text)),
    ).toEqual(movedProto.frames as TrackingEvent[]);
    expect((movedProto.frames[0] as TrackingEvent).event.case).toBe("moved");
    json.close();
    proto.close();
  });
});

describe("who may watch", () => {
  test("missing or bad token 401, unknown order 404, the order's restaurant 403; dispatchers and the rider may", async () => {
    const { customerId, riderId, owner, path } = await newOrder();
    const auth = async (sub: string, role: "customer" | "rider" | "dispatcher" | "ops") => ({
      authorization: `Bearer ${await testToken(sub, role, role === "rider" ? "london" : undefined)}`,
    });
    expect((await refusalStatus(owner.httpUrl, path)).status).toBe(401);
    expect(
      (await refusalStatus(owner.httpUrl, path, { authorization: "Bearer nope" })).status,
    ).toBe(401);
    const missing = await refusalStatus(
      owner.httpUrl,
      `/v1/orders/${uniqueId("nope")}/track`,
      await auth(customerId, "customer"),
    );
    expect(missing).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(missing.body.error.requestId).toMatch(/^[\w-]{8,}$/);
    // The order's restaurant knows the order: it is told no (it follows the status, not the rider).
    const restaurant = await refusalStatus(owner.httpUrl, path, {
      authorization: `Bearer ${await testToken("rest-1", "restaurant")}`,
    });
    expect(restaurant).toMatchObject({ status: 403, body: { error: { code: "forbidden" } } });
    expect(
      (
        await refusalStatus(
          owner.httpUrl,
          "/v1/orders/bad%7Bid%7D/track",
          await auth(customerId, "customer"),
        )
      ).status,
    ).toBe(400);
    for (const [sub, role] of [
      [riderId, "rider"],
      ["d1", "dispatcher"],
      ["o1", "ops"],
    ] as const) {
      const watcher = await openWatcher(`${owner.url}${path}`, { headers: await auth(sub, role) });
      await watcher.waitForFrames(1);
      watcher.close();
    }
  });
});

describe("someone else's order", () => {
  test("is refused exactly as a missing one, so no token can probe which ids exist", async () => {
    const { owner, path } = await newOrder();
    const missingId = uniqueId("nope");
    const shape = ({ status, body, headerNames }: Awaited<ReturnType<typeof refusalStatus>>) => ({
      status,
      code: body.error.code,
      message: body.error.message,
      headerNames,
    });
    for (const [sub, role] of [
      [uniqueId("cust"), "customer"],
      [uniqueId("rider"), "rider"],
      [uniqueId("rest"), "restaurant"],
    ] as const) {
      const headers = { authorization: `Bearer ${await testToken(sub, role, "london")}` };
      const theirs = shape(await refusalStatus(owner.httpUrl, path, headers));
      const missing = shape(
        await refusalStatus(owner.httpUrl, `/v1/orders/${missingId}/track`, headers),
      );
      expect({ role, ...theirs }).toEqual({ role, ...missing });
      expect(theirs).toMatchObject({ status: 404, code: "not_found" });
    }
  });
});

describe("consistent hashing", () => {
  test("a node that does not own the order sends `moved` with the owner's URL and closes 4001", async () => {
    const { orderId, customerId, owner, other, path } = await newOrder();
    const watcher = await openWatcher(`${other.url}${path}`, {
      headers: { authorization: `Bearer ${await testToken(customerId, "customer")}` },
    });
    expect(await watcher.closed).toEqual({ code: 4001, reason: "moved" });
    expect(watcher.frames).toEqual([{ type: "moved", orderId, url: owner.url }]);
  });

  test("every node answers who owns an order (the balancer's lookup), for the id alone or a whole track path", async () => {
    const { orderId, owner } = await newOrder();
    for (const node of [nodeA, nodeB])
      for (const path of [
        orderId,
        `v1/orders/${orderId}/track`,
        `tracking/${owner.id}/v1/orders/${orderId}/track`,
      ]) {
        const answer = await fetch(`${node.httpUrl}/ring/owner/${path}`);
        expect(answer.headers.get("x-tracking-node")).toBe(owner.id);
        expect(await answer.json()).toEqual({ orderId, node: owner.id, url: owner.url });
      }
  });

  test("a node serves the track route under its public URL's path too, and refuses another node's", async () => {
    const path = "/tracking/t-edge/v1/orders/";
    const node = await startTestTracking({
      REDIS_URL: fixture.redis.url,
      TRACKING_PUBLIC_URL: "wss://edge.example/tracking/t-edge",
    });
    try {
      const { orderId, customerId } = await newOrder();
      const headers = { authorization: `Bearer ${await testToken(customerId, "customer")}` };
      const watcher = await openWatcher(`ws://127.0.0.1:${node.app.port}${path}${orderId}/track`, {
        headers,
      });
      // Its first frame: the status (it owns the order) or `moved` (another node does).
      await watcher.waitForFrames(1);
      watcher.close();
      const other = await refusalStatus(
        `http://127.0.0.1:${node.app.port}`,
        `/tracking/t-other/v1/orders/${orderId}/track`,
        headers,
      );
      expect([other.status, other.body.error.code]).toEqual([404, "not_found"]);
    } finally {
      await node.stop();
      for (const app of [nodeA.app, nodeB.app])
        await waitUntil(async () => {
          await app.ring.refresh();
          return app.ring.nodes().length === 2;
        });
    }
  });

  test("1,000 sockets on one order make exactly one Redis subscription, gone after the last leaves", async () => {
    const { orderId, customerId, owner, path } = await newOrder();
    const headers = { authorization: `Bearer ${await testToken(customerId, "customer")}` };
    const watchers = await Promise.all(
      Array.from({ length: 1_000 }, () => openWatcher(`${owner.url}${path}`, { headers })),
    );
    const subscribers = async () =>
      Number(
        ((await fixture.db.pubsub("NUMSUB", keys.orderTrack(orderId))) as [string, number])[1],
      );
    await waitUntil(async () => (await subscribers()) === 1);
    // Every snapshot first: a snapshot read after READY would be older than it, and skipped.
    await Promise.all(watchers.map((watcher) => watcher.waitForFrames(1, 20_000)));
    await fixture.db.publish(
      keys.orderTrack(orderId),
      statusEventJson(orderId, { status: "READY", version: 3 }),
    );
    await Promise.all(watchers.map((watcher) => watcher.waitForFrames(2)));
    expect(watchers.every((w) => (w.frames.at(-1) as { status?: string }).status === "READY")).toBe(
      true,
    );
    expect(await subscribers()).toBe(1);
    for (const watcher of watchers) watcher.close();
    await waitUntil(async () => (await subscribers()) === 0);
  }, 30_000);
});
