import { describe, expect, test } from "bun:test";
import pino from "pino";
import { encodeStoredPosition } from "../core/position/position-forms";
import { connectRedis, type RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { assignRider } from "../core/redis/order-scripts";
import { pingTrack, useIngestOnRedis } from "../test/support/ingest";
import { seedOrder } from "../test/support/orders";
import { openPingStream } from "../test/support/ping-stream";
import { SOME_POSITION } from "../test/support/positions";
import { testToken, uniqueId } from "../test/support/tokens";
import {
  openWatcher,
  startTestTracking,
  type TestTrackingNode,
  type TestWatcher,
} from "../test/support/tracking";
import { waitUntil } from "../test/support/wait";

let node: TestTrackingNode;
let connection: RedisConnection;
const fixture = useIngestOnRedis(
  {},
  {
    stopFirst: async () => {
      await node?.stop();
      await connection?.close();
    },
  },
);

type Frame = { type: string; seq?: number; status?: string };
const positionsOf = (watcher: TestWatcher) =>
  (watcher.frames as Frame[]).filter((frame) => frame.type === "position").map((f) => f.seq);

describe("the snapshot's last position", () => {
  test("a fix from before the order (the rider's last ping, hours ago) is never sent: not on assignment, not on connect; the rider's next ping is, and then it is the snapshot", async () => {
    connection = await connectRedis(
      { mode: "standalone", url: fixture.redis.url },
      "order-watch-test",
      pino({ level: "silent" }),
    );
    node = await startTestTracking({ REDIS_URL: fixture.redis.url });
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    const riderId = uniqueId("rider");
    await seedOrder(fixture.db, { orderId, customerId });
    // Where the rider's app last pinged, at the end of yesterday's shift (its home, say):
    // still the rider's stored position, which keeps for a day.
    const hoursAgo = Date.now() - 5 * 3_600_000;
    const lastShift = { ...SOME_POSITION, riderId, lat: 51.45, seq: 7n };
    await fixture.db.set(
      keys.riderPosition(riderId),
      encodeStoredPosition({ ...lastShift, recordedAtMs: hoursAgo, receivedAtMs: hoursAgo }),
    );
    const url = `${node.url}/v1/orders/${orderId}/track?access_token=${await testToken(customerId, "customer")}`;
    const watching = await openWatcher(url);
    await watching.waitForFrames(1);
    // The rider accepts (from a notification, before its app streams): the accept's own script.
    await assignRider(connection, { orderId, riderId, token: `${orderId}:1` });
    await fixture.db.sadd(keys.riderOrders(riderId), orderId);
    await watching.waitForFrames(2);
    const connected = await openWatcher(url);
    await connected.waitForFrames(1);
    expect(connected.frames[0]).toMatchObject({ type: "status", status: "ASSIGNED" });

    // The app comes up and pings from where the rider is now: that is the first position shown.
    const rider = openPingStream(fixture.ingest.grpc, await testToken(riderId, "rider", "london"));
    rider.send(pingTrack(1)[0] as never);
    await rider.next();
    for (const watcher of [watching, connected])
      await waitUntil(() => positionsOf(watcher).includes(1), 5_000, "the rider's ping");
    expect(positionsOf(watching)).toEqual([1]);
    expect(positionsOf(connected)).toEqual([1]);
    // A fresh fix is the snapshot, as before.
    const later = await openWatcher(url);
    await later.waitForFrames(2);
    expect(later.frames[1]).toMatchObject({ type: "position", riderId, seq: 1 });
    for (const watcher of [watching, connected, later]) watcher.close();
    await rider.finish();
  });
});
