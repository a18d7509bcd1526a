import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Redis } from "ioredis";
import { encodeStoredPosition } from "../core/position/position-forms";
import { TRACKING_SUBPROTOCOLS } from "../core/protocol/tracking-protocol";
import { keys } from "../core/redis/keys";
import { freePort } from "../test/support/free-port";
import { seedOrder } from "../test/support/orders";
import { positionEvent, SOME_POSITION } from "../test/support/positions";
import { openStalledWebSocket } from "../test/support/raw-websocket";
import { useRedisClient } from "../test/support/redis-connection";
import { startRedis } from "../test/support/redis-server";
import { TEST_JWT_SECRET, testToken, uniqueId } from "../test/support/tokens";
import { openWatcher, refusalStatus, startTestTracking } from "../test/support/tracking";
import { waitUntil } from "../test/support/wait";

const fixture = useRedisClient();

/** A position of the order's rider as the ingest publishes it, padded with a field of `padding` bytes. */
function positionFrame(orderId: string, riderId: string, seq: number, padding = 0) {
  const event = JSON.parse(positionEvent(orderId, riderId, seq));
  return JSON.stringify({ ...event, ...(padding > 0 ? { padding: "x".repeat(padding) } : {}) });
}

/** The seq of a tracking.v2.json frame's position (a decimal string, as the mapping has it). */
const seqOf = (frame: unknown) => (frame as { position?: { seq: string } }).position?.seq;

test("a socket that never reads is conflated, then closed; the other watcher of the order gets every frame", async () => {
  const ownRedis = await startRedis();
  const ownDb = new Redis(ownRedis.url);
  const node = await startTestTracking({
    REDIS_URL: ownRedis.url,
    TRACKING_CONFLATE_ABOVE_BYTES: "65536",
    TRACKING_CLOSE_ABOVE_BYTES: "268435456",
    TRACKING_CLOSE_AFTER_STUCK_MS: "300",
  });
  try {
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    const riderId = uniqueId("rider");
    await seedOrder(ownDb, { orderId, customerId, riderId });
    const token = await testToken(customerId, "customer");
    const path = `/v1/orders/${orderId}/track?access_token=${token}`;
    // Both read tracking.v2.json: the frames go out as published, 64 KiB each.
    const stalled = await openStalledWebSocket(Number(new URL(node.url).port), path, {
      "Sec-WebSocket-Protocol": TRACKING_SUBPROTOCOLS.json,
    });
    const healthy = await openWatcher(`${node.url}${path}`, {
      protocols: [TRACKING_SUBPROTOCOLS.json],
    });
    await healthy.waitForFrames(1);
    // 200 frames of 64 KiB: far more than the kernel's socket buffers hold.
    for (let seq = 1; seq <= 200; seq++)
      await ownDb.publish(keys.orderTrack(orderId), positionFrame(orderId, riderId, seq, 65_536));
    await healthy.waitForFrames(201, 15_000);
    expect(healthy.frames.slice(1).map(seqOf)).toEqual(
      Array.from({ length: 200 }, (_, i) => String(i + 1)),
    );
    const conflated = await node.app.registry.getSingleMetricAsString(
      "edge_tracking_frames_conflated_total",
    );
    expect(Number(/ (\d+)$/m.exec(conflated)?.[1])).toBeGreaterThan(0);
    // Stuck past the bound: the next frame closes it.
    await Bun.sleep(350);
    await ownDb.publish(keys.orderTrack(orderId), positionFrame(orderId, riderId, 201));
    await healthy.waitForFrames(202);
    await waitUntil(async () =>
      (
        await node.app.registry.getSingleMetricAsString("edge_tracking_sockets_closed_total")
      ).includes('reason="slow consumer"'),
    );
    stalled.destroy();
    healthy.close();
  } finally {
    await node.stop();
    ownDb.disconnect();
    await ownRedis.stop();
  }
}, 30_000);

test("Redis restarted empty under a watcher: its order's record is lost, not ended, so it closes 1013 (back off), not 4410", async () => {
  const ownRedis = await startRedis();
  const ownDb = new Redis(ownRedis.url);
  const node = await startTestTracking({ REDIS_URL: ownRedis.url });
  try {
    const orderId = uniqueId("order");
    const customerId = uniqueId("cust");
    await seedOrder(ownDb, { orderId, customerId, riderId: uniqueId("rider") });
    const path = `/v1/orders/${orderId}/track?access_token=${await testToken(customerId, "customer")}`;
    const watcher = await openWatcher(`${node.url}${path}`);
    await watcher.waitForFrames(1);
    await ownRedis.kill();
    await ownRedis.restart();
    // The node's subscription comes back, and its read of the order finds nothing.
    expect(await watcher.closed).toEqual({ code: 1013, reason: "try again later" });
    expect(watcher.frames).toHaveLength(1);
    // The app backs off and asks again: a 503 `unavailable` (back off again) while the node's
    // Redis connections come back under load, then a 404 while the order is gone...
    let refusal = await refusalStatus(node.httpUrl, path);
    for (let attempt = 0; refusal.status === 503 && attempt < 50; attempt++) {
      expect(refusal.body.error.code).toBe("unavailable");
      await Bun.sleep(100);
      refusal = await refusalStatus(node.httpUrl, path);
    }
    expect(refusal.status).toBe(404);
    // ...and the order again once its record is back.
    await seedOrder(ownDb, { orderId, customerId, riderId: uniqueId("rider") });
    const again = await openWatcher(`${node.url}${path}`);
    expect(await again.waitForFrames(1)).toEqual([
      expect.objectContaining({ type: "status", status: "ASSIGNED" }),
    ]);
    again.close();
  } finally {
    await node.stop();
    ownDb.disconnect();
    await ownRedis.stop();
  }
}, 30_000);

describe("node changes", () => {
  test("drain: watchers get `moved` to the new owner and close 1012; the node leaves the ring first", async () => {
    const nodeX = await startTestTracking({ REDIS_URL: fixture.redis.url });
    const nodeY = await startTestTracking({ REDIS_URL: fixture.redis.url });
    try {
      await waitUntil(async () => {
        await nodeX.app.ring.refresh();
        return nodeX.app.ring.nodes().length >= 2;
      });
      let orderId = uniqueId("order");
      while (nodeX.app.ring.ownerOf(orderId)?.id !== nodeX.id) orderId = uniqueId("order");
      const customerId = uniqueId("cust");
      await seedOrder(fixture.db, { orderId, customerId });
      const watcher = await openWatcher(
        `${nodeX.url}/v1/orders/${orderId}/track?access_token=${await testToken(customerId, "customer")}`,
      );
      await watcher.waitForFrames(1);
      await nodeX.stop();
      expect(await watcher.closed).toEqual({ code: 1012, reason: "server restarting" });
      expect(watcher.frames.at(-1)).toEqual({ type: "moved", orderId, url: nodeY.url });
      // Out of every ring at once, not after its heartbeat ages.
      await nodeY.app.ring.refresh();
      expect(nodeY.app.ring.nodes().map((node) => node.id)).toEqual([nodeY.id]);
    } finally {
      await nodeX.stop();
      await nodeY.stop();
    }
  });

  test("a node whose id another node claimed (it stalled past the TTL) stops beating and counts it", async () => {
    const node = await startTestTracking({
      REDIS_URL: fixture.redis.url,
      TRACKING_NODE_TTL_MS: "1000",
    });
    try {
      const lastBeat = async () => Number(await fixture.db.zscore(keys.trackingNodes(), node.id));
      const claimLost = async () =>
        (
          await node.app.registry.getSingleMetricAsString("edge_tracking_node_id_claim_lost_total")
        ).endsWith(" 1");
      expect(await claimLost()).toBe(false);
      // What a second node with this id does once this one's claim lapsed.
      await fixture.db.set(
        keys.trackingNodeClaim(node.id),
        "another-instance ws://127.0.0.1:1",
        "PX",
        60_000,
      );
      await waitUntil(claimLost, 5_000, "the lost claim counted");
      const beat = await lastBeat();
      await Bun.sleep(300);
      expect(await lastBeat()).toBe(beat);
      // The other node's claim is left alone.
      expect(await fixture.db.get(keys.trackingNodeClaim(node.id))).toBe(
        "another-instance ws://127.0.0.1:1",
      );
    } finally {
      await node.stop();
    }
  });

  test("a node that dies: its heartbeat expires, the order moves, and the new owner sends the last position at once", async () => {
    // nodeY's ring must see the killed node age out: a short TTL, not the harness's.
    const nodeY = await startTestTracking({
      REDIS_URL: fixture.redis.url,
      TRACKING_NODE_TTL_MS: "1000",
    });
    const port = await freePort();
    const deadId = uniqueId("dead");
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "main.ts")], {
      env: {
        ...process.env,
        REDIS_URL: fixture.redis.url,
        JWT_SECRET: TEST_JWT_SECRET,
        TRACKING_PORT: String(port),
        TRACKING_NODE_ID: deadId,
        TRACKING_PUBLIC_URL: `ws://127.0.0.1:${port}`,
        TRACKING_HEARTBEAT_MS: "100",
        TRACKING_RING_REFRESH_MS: "100",
        TRACKING_NODE_TTL_MS: "1000",
        LOG_LEVEL: "silent",
      },
      stdout: "ignore",
      stderr: "inherit",
    });
    try {
      await waitUntil(async () => {
        await nodeY.app.ring.refresh();
        return nodeY.app.ring.nodes().some((n) => n.id === deadId);
      });
      let orderId = uniqueId("order");
      while (nodeY.app.ring.ownerOf(orderId)?.id !== deadId) orderId = uniqueId("order");
      const customerId = uniqueId("cust");
      const riderId = uniqueId("rider");
      await seedOrder(fixture.db, { orderId, customerId, riderId });
      const now = Date.now();
      const last = {
        ...SOME_POSITION,
        riderId,
        lat: 51.51,
        seq: 77n,
        recordedAtMs: now,
        receivedAtMs: now,
      };
      await fixture.db.set(keys.riderPosition(riderId), encodeStoredPosition(last));
      const path = `/v1/orders/${orderId}/track?access_token=${await testToken(customerId, "customer")}`;
      const first = await openWatcher(`ws://127.0.0.1:${port}${path}`);
      await first.waitForFrames(2);
      child.kill("SIGKILL");
      expect((await first.closed).code).toBe(1006);
      // The client's reconnect loop: the gateway (or any node) names the owner once the TTL has passed.
      await waitUntil(async () => {
        await nodeY.app.ring.refresh();
        return nodeY.app.ring.ownerOf(orderId)?.id === nodeY.id;
      });
      const second = await openWatcher(`${nodeY.url}${path}`);
      await second.waitForFrames(2);
      expect(second.frames[1]).toMatchObject({ type: "position", orderId, seq: 77, lat: 51.51 });
      second.close();
    } finally {
      child.kill("SIGKILL");
      await nodeY.stop();
    }
  });
});
