// A tracking node that stalls past its TTL while a replacement takes its id
// (a VM pause, a long GC, a partition from Redis), with real node processes.
import { expect, test } from "bun:test";
import { keys } from "../core/redis/keys";
import { startFreezingProxy } from "../test/support/freezing-proxy";
import { seedOrder } from "../test/support/orders";
import { useRedisClient } from "../test/support/redis-connection";
import { testToken, uniqueId } from "../test/support/tokens";
import {
  openWatcher,
  PROCESS_NODE_TTL_MS,
  refusalStatus,
  spawnTrackingProcess,
  startTestTracking,
} from "../test/support/tracking";
import { waitUntil } from "../test/support/wait";

const fixture = useRedisClient();

test("a node that finds its id claimed by another sends its watchers to the new holder, closes 1012 and exits 1", async () => {
  const id = uniqueId("stalled");
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(fixture.db, { orderId, customerId, riderId: uniqueId("rider") });
  const stalled = await spawnTrackingProcess({
    REDIS_URL: fixture.redis.url,
    TRACKING_NODE_ID: id,
  });
  const holds = (url: string) => async () =>
    (await fixture.db.get(keys.trackingNodeClaim(id)))?.endsWith(` ${url}`) === true;
  await waitUntil(holds(stalled.url), 5_000, "the node holding its id");
  const headers = { authorization: `Bearer ${await testToken(customerId, "customer")}` };
  const path = `/v1/orders/${orderId}/track`;
  let replacement: Awaited<ReturnType<typeof spawnTrackingProcess>> | undefined;
  try {
    const watcher = await openWatcher(`${stalled.url}${path}`, { headers });
    await watcher.waitForFrames(1);
    // Stalled past its TTL: its claim lapses and a replacement started with the same id takes it.
    stalled.signal("SIGSTOP");
    replacement = await spawnTrackingProcess({
      REDIS_URL: fixture.redis.url,
      TRACKING_NODE_ID: id,
    });
    const { url } = replacement;
    await waitUntil(holds(url), 5_000, "the replacement holding the id");
    stalled.signal("SIGCONT");

    // Its watchers are sent to the id's new holder, not left on a node no ring names any more.
    expect(await watcher.closed).toEqual({ code: 1012, reason: "server restarting" });
    expect(watcher.frames.at(-1)).toEqual({ type: "moved", orderId, url });
    // Out, for its supervisor to restart (a restart waits one TTL, then exits 2 while the id is held).
    expect(await stalled.exited).toBe(1);
    const messages = stalled.logs.map((line) => line.msg);
    expect(messages.some((msg) => msg.startsWith("TRACKING_NODE_ID claimed by another node"))).toBe(
      true,
    );
    expect(stalled.logs.find((line) => line.level === 60)?.msg).toBe(
      "stopped serving: TRACKING_NODE_ID claimed by another node",
    );
    // The holder's claim and its place in the registry are left alone.
    expect(await fixture.db.get(keys.trackingNodeClaim(id))).toEndWith(` ${url}`);
    expect(await fixture.db.hget(keys.trackingNodeUrls(), id)).toBe(url);
    // Where the moved frame sent the watcher, it is served.
    const moved = await openWatcher(`${url}${path}`, { headers });
    await moved.waitForFrames(1);
    moved.close();
  } finally {
    stalled.signal("SIGCONT");
    await stalled.kill();
    await replacement?.stop();
  }
}, 20_000);

test("a node that lost its id sends its watchers to the holder named by the claim, before any ring names the holder", async () => {
  const node = await startTestTracking({ REDIS_URL: fixture.redis.url });
  // Nodes of earlier tests may still be in this ring: an order it gives to this node.
  const inRing = () => node.app.ring.nodes().some((member) => member.id === node.id);
  await waitUntil(inRing, 5_000, "the node in its own ring");
  const orderId = Array.from({ length: 1_000 }, () => uniqueId("order")).find(
    (id) => node.app.ring.ownerOf(id)?.id === node.id,
  );
  if (orderId === undefined) throw new Error("no order of 1,000 is this node's in its ring");
  const customerId = uniqueId("cust");
  await seedOrder(fixture.db, { orderId, customerId, riderId: uniqueId("rider") });
  try {
    const watcher = await openWatcher(`${node.url}/v1/orders/${orderId}/track`, {
      headers: { authorization: `Bearer ${await testToken(customerId, "customer")}` },
    });
    await watcher.waitForFrames(1);
    // The holder has claimed the id but not beaten yet: every ring still names this node's URL.
    // (Before, the watchers closed 1012 with no `moved` whenever the holder's first beat was late.)
    const holderUrl = "ws://127.0.0.1:1";
    await fixture.db.set(keys.trackingNodeClaim(node.id), `${uniqueId("instance")} ${holderUrl}`);
    expect((await node.app.failed).message).toBe("TRACKING_NODE_ID claimed by another node");
    expect(await watcher.closed).toEqual({ code: 1012, reason: "server restarting" });
    expect(watcher.frames.at(-1)).toEqual({ type: "moved", orderId, url: holderUrl });
    expect(await fixture.db.hget(keys.trackingNodeUrls(), node.id)).toBe(node.url);
  } finally {
    await node.stop();
    await fixture.db.del(keys.trackingNodeClaim(node.id));
  }
}, 10_000);

test("a process whose id is claimed mid-SIGTERM-drain finishes that drain and exits 0, not 1", async () => {
  const id = uniqueId("draining");
  // Beats 1.5 s apart: the claim is taken and SIGTERM sent just after one, so the
  // drain's last write (not a beat) is what finds the id held by another.
  const node = await spawnTrackingProcess({
    REDIS_URL: fixture.redis.url,
    TRACKING_NODE_ID: id,
    TRACKING_HEARTBEAT_MS: "1500",
    TRACKING_NODE_TTL_MS: "3000",
  });
  try {
    const lastBeat = () => fixture.db.zscore(keys.trackingNodes(), id);
    // Past the first beat (written while the node joins, before its SIGTERM handler is on)...
    await waitUntil(async () => (await lastBeat()) !== null, 5_000, "the node joined");
    const first = await lastBeat();
    // ...to the moment the next one is written.
    await waitUntil(async () => (await lastBeat()) !== first, 5_000, "a heartbeat");
    await fixture.db.set(keys.trackingNodeClaim(id), `${uniqueId("instance")} ws://127.0.0.1:1`);
    node.signal("SIGTERM");
    expect(await node.exited).toBe(0);
    const messages = node.logs.map((line) => line.msg);
    // The drain's own last write found the id held (not a beat before the SIGTERM)...
    const lost = messages.findIndex((msg) =>
      msg.startsWith("TRACKING_NODE_ID claimed by another node"),
    );
    expect(lost).toBeGreaterThan(messages.indexOf("draining"));
    expect(messages.indexOf("draining")).toBeGreaterThan(-1);
    // ...and that drain ended the process as it began: no fatal 'stopped serving', exit 0 above.
    expect(messages.at(-1)).toBe("drained");
    expect(node.logs.some((line) => line.level === 60)).toBe(false);
  } finally {
    await node.kill();
    await fixture.db.del(keys.trackingNodeClaim(id));
  }
}, 15_000);

test("a drain that finds its id claimed by another leaves the holder's live figures and claim alone", async () => {
  const node = await startTestTracking({
    REDIS_URL: fixture.redis.url,
    TRACKING_NODE_TTL_MS: PROCESS_NODE_TTL_MS,
  });
  const figures = `tracking:${node.id}`;
  await waitUntil(
    async () => (await fixture.db.hget(keys.nodeStats(), figures)) !== null,
    5_000,
    "the node's live figures",
  );
  // The node stalled past its TTL and a replacement took the id; SIGTERM comes before the next beat.
  const holder = `${uniqueId("instance")} ws://127.0.0.1:1`;
  await fixture.db.set(keys.trackingNodeClaim(node.id), holder);
  await node.app.drain();
  expect((await node.app.failed).message).toBe("TRACKING_NODE_ID claimed by another node");
  // The figures under the id are the new holder's now (it writes the same field): not deleted.
  expect(await fixture.db.hget(keys.nodeStats(), figures)).not.toBeNull();
  expect(await fixture.db.get(keys.trackingNodeClaim(node.id))).toBe(holder);
}, 10_000);

test("a node that finds its id claimed refuses new watches (503 draining) while it reads the ring once more", async () => {
  const proxy = await startFreezingProxy(fixture.redis.port);
  const node = await startTestTracking({
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    TRACKING_NODE_TTL_MS: "5000",
  });
  let release = () => {};
  try {
    // Every ring read fails from now on (a registry of the wrong type), so the node's view is
    // behind and its last read of the ring, after the lost claim, goes to Redis...
    await fixture.db.set(keys.trackingNodes(), "not a sorted set");
    // ...which stops answering just after telling the node its id is held by another.
    const hold = proxy.holdRequestsAfter("held");
    release = hold.release;
    await fixture.db.set(
      keys.trackingNodeClaim(node.id),
      `${uniqueId("instance")} ws://127.0.0.1:1`,
    );
    await hold.holding;
    const token = await testToken(uniqueId("cust"), "customer");
    const answer = await Promise.race([
      refusalStatus(node.httpUrl, `/v1/orders/${uniqueId("order")}/track?access_token=${token}`),
      Bun.sleep(3_000).then(() => undefined),
    ]);
    expect(answer?.status).toBe(503);
    expect(answer?.body.error.code).toBe("draining");
    expect(answer?.retryAfter).toBe("1");
  } finally {
    release();
    await node.app.failed;
    await proxy.close();
    await fixture.db.del(keys.trackingNodes());
  }
}, 15_000);
