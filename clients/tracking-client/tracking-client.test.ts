import { expect, test } from "bun:test";
import { positionEventJson, statusEventJson } from "../../core/messages/tracking-events";
import { encodeStoredPosition } from "../../core/position/position-forms";
import { keys } from "../../core/redis/keys";
import type { TrackingEvent } from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { useGatewayAndTrackingNodes } from "../../test/support/edge-nodes";
import { seedOrder } from "../../test/support/orders";
import { SOME_POSITION } from "../../test/support/positions";
import { testToken, tokenExpMs, uniqueId } from "../../test/support/tokens";
import { startTestTracking } from "../../test/support/tracking";
import { waitUntil } from "../../test/support/wait";
import { followOrder, type TrackingClient, type TrackingClientEvents } from "./tracking-client";

const fixture = useGatewayAndTrackingNodes();

/** A rider's position as the ingest stores and publishes it. */
function positionOf(riderId: string, seq: bigint) {
  const now = Date.now();
  return { ...SOME_POSITION, riderId, seq, recordedAtMs: now, receivedAtMs: now };
}

/** Starts an order with a rider, and a client following it that records what it emits. */
async function followed(
  options: {
    frames?: "json" | "proto";
    ttlSeconds?: number;
    /** Where the client looks the order up (a stand-in in front of the gateway), and its first socket. */
    gatewayUrl?: string;
    nodeUrl?: string;
  } = {},
) {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  const seen = {
    events: [] as TrackingEvent[],
    stopped: [] as TrackingClientEvents["stopped"][],
    retrying: [] as TrackingClientEvents["retrying"][],
    refreshed: 0,
  };
  const token = await testToken(customerId, "customer", undefined, options.ttlSeconds);
  const expiresAtMs = tokenExpMs(token);
  const client = followOrder({
    gatewayUrl: options.gatewayUrl ?? fixture.gateway.url,
    ...(options.nodeUrl ? { nodeUrl: options.nodeUrl } : {}),
    orderId,
    token,
    refreshToken: () => {
      seen.refreshed += 1;
      return testToken(customerId, "customer");
    },
    ...(options.frames ? { frames: options.frames } : {}),
    backoff: { firstMs: 50, maxMs: 200 },
  });
  client.on("event", (event) => seen.events.push(event));
  client.on("stopped", (stopped) => seen.stopped.push(stopped));
  client.on("retrying", (retrying) => seen.retrying.push(retrying));
  const seqs = () =>
    seen.events.flatMap((e) => (e.event.case === "position" ? [e.event.value.seq] : []));
  const statuses = () => seen.events.filter((e) => e.event.case === "status").length;
  return { orderId, riderId, client, seen, seqs, statuses, expiresAtMs };
}

async function publishPosition(orderId: string, riderId: string, seq: bigint): Promise<void> {
  await fixture.db.publish(
    keys.orderTrack(orderId),
    positionEventJson(orderId, positionOf(riderId, seq)),
  );
}

function ownerOf(orderId: string) {
  const owner = fixture.nodes.find((node) => node.app.ring.ownerOf(orderId)?.id === node.id);
  if (!owner) throw new Error(`no owner for ${orderId}`);
  return owner;
}

function closeAll(...clients: TrackingClient[]): void {
  for (const client of clients) client.close();
}

test("looks the node up through the gateway and reads both frame formats with the generated type", async () => {
  const json = await followed({ frames: "json" });
  const proto = await followed({ frames: "proto" });
  await waitUntil(() => json.statuses() === 1 && proto.statuses() === 1);
  const seq = 2n ** 63n + 5n;
  await publishPosition(json.orderId, json.riderId, seq);
  await publishPosition(proto.orderId, proto.riderId, seq);
  await waitUntil(() => json.seqs().length === 1 && proto.seqs().length === 1);
  expect([json.seqs(), proto.seqs()]).toEqual([[seq], [seq]]);
  expect([json.client.afterSeq, json.client.state]).toEqual([seq, "open"]);
  expect(json.client.nodeUrl).toBe(ownerOf(json.orderId).url);
  closeAll(json.client, proto.client);
  expect(json.seen.stopped).toEqual([{ reason: "closed" }]);
});

test("4410: the final status, then the client stops for good", async () => {
  const { orderId, riderId, client, seen, statuses } = await followed();
  await waitUntil(() => statuses() === 1);
  await fixture.db.hset(keys.order(orderId), "status", "DELIVERED", "version", "3");
  await fixture.db.publish(
    keys.orderTrack(orderId),
    statusEventJson(orderId, { status: "DELIVERED", version: 3, riderId }),
  );
  await waitUntil(() => seen.stopped.length === 1);
  expect(seen.stopped).toEqual([{ reason: "order ended", code: 4410 }]);
  const last = seen.events.at(-1)?.event;
  expect(last?.case === "status" && last.value.status).toBe("DELIVERED");
  // Stopped by the close itself: no retry came of it.
  expect(client.state).toBe("stopped");
  expect(seen.retrying.filter((retry) => retry.code !== undefined)).toEqual([]);
});

test("4401 after expiry: a fresh token from refreshToken, and the position the close cost comes back once", async () => {
  const { orderId, riderId, client, seen, seqs, expiresAtMs } = await followed({ ttlSeconds: 2 });
  await waitUntil(() => seen.events.length === 1);
  await publishPosition(orderId, riderId, 1n);
  await publishPosition(orderId, riderId, 2n);
  await waitUntil(() => seqs().length === 2);
  await waitUntil(() => Date.now() > expiresAtMs, 5_000, "token expiry");
  // The next frame finds the token expired: 4401 instead of position 3, which the ingest stored.
  await fixture.db.set(keys.riderPosition(riderId), encodeStoredPosition(positionOf(riderId, 3n)));
  await publishPosition(orderId, riderId, 3n);
  await waitUntil(() => seen.refreshed === 1 && seqs().length === 3, 8_000);
  await publishPosition(orderId, riderId, 4n);
  await waitUntil(() => seqs().length === 4);
  expect(seqs()).toEqual([1n, 2n, 3n, 4n]);
  expect(seen.stopped).toEqual([]);
  client.close();
});

test("a node joins: the orders it takes are `moved` (4001) to it at once, the others stay; afterSeq holds", async () => {
  // 24 orders: the chance that the new node (a third of the ring) takes none is (2/3)^24 ≈ 6e-5.
  const followers = await Promise.all(Array.from({ length: 24 }, () => followed()));
  await waitUntil(() => followers.every((f) => f.statuses() === 1), 8_000);
  for (const f of followers) {
    await publishPosition(f.orderId, f.riderId, 1n);
    // Stored too, as the ingest does: a snapshot without afterSeq would send it again.
    await fixture.db.set(
      keys.riderPosition(f.riderId),
      encodeStoredPosition(positionOf(f.riderId, 1n)),
    );
  }
  await waitUntil(() => followers.every((f) => f.seqs().length === 1), 8_000);
  const joined = await startTestTracking({ REDIS_URL: fixture.redis.url });
  try {
    await waitUntil(async () => {
      await joined.app.ring.refresh();
      return joined.app.ring.nodes().length === 3;
    });
    const taken = followers.filter((f) => joined.app.ring.ownerOf(f.orderId)?.id === joined.id);
    expect(taken.length).toBeGreaterThan(0);
    await waitUntil(
      () => taken.every((f) => f.client.nodeUrl === joined.url && f.statuses() === 2),
      8_000,
    );
    for (const f of followers) {
      const moved = f.seen.events.filter((e) => e.event.case === "moved").length;
      expect([f.orderId, moved, f.seen.retrying]).toEqual([
        f.orderId,
        taken.includes(f) ? 1 : 0,
        [],
      ]);
    }
    for (const f of followers) await publishPosition(f.orderId, f.riderId, 2n);
    await waitUntil(() => followers.every((f) => f.seqs().length === 2), 8_000);
    for (const f of followers) expect(f.seqs()).toEqual([1n, 2n]);
  } finally {
    closeAll(...followers.map((f) => f.client));
    await joined.stop();
  }
  // The file's last test counts on a two-node ring again.
  for (const app of [fixture.gateway.app, ...fixture.nodes.map((node) => node.app)])
    await waitUntil(async () => {
      await app.ring.refresh();
      return app.ring.nodes().length === 2;
    });
});

// Last: it drains one of the file's two nodes.
test("a drain: one `moved` followed straight to the other node, no backoff, with afterSeq so the stored position is not sent again", async () => {
  const { orderId, riderId, client, seen, seqs, statuses } = await followed();
  await waitUntil(() => statuses() === 1);
  for (const seq of [1n, 2n, 3n]) await publishPosition(orderId, riderId, seq);
  await fixture.db.set(keys.riderPosition(riderId), encodeStoredPosition(positionOf(riderId, 3n)));
  await waitUntil(() => seqs().length === 3);
  const owner = ownerOf(orderId);
  const other = fixture.nodes.find((node) => node !== owner);
  await owner.stop();
  // The other node's snapshot: the status again, and no position (3 is the newest).
  await waitUntil(() => statuses() === 2 && client.state === "open", 8_000);
  expect(client.nodeUrl).toBe(other?.url);
  // A drained node serves until every ring has dropped it, so its 1012 always follows a
  // `moved` naming the new owner: one move, straight there, no backoff and no lookup.
  const moves = seen.events.flatMap((e) => (e.event.case === "moved" ? [e.event.value.url] : []));
  expect(moves).toEqual([other?.url ?? "another node"]);
  expect(seen.retrying).toEqual([]);
  await publishPosition(orderId, riderId, 4n);
  await waitUntil(() => seqs().length === 4);
  expect(seqs()).toEqual([1n, 2n, 3n, 4n]);
  client.close();
});

test("a lookup answered 429 waits at least its Retry-After before asking again, not just the backoff", async () => {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  await seedOrder(fixture.db, { orderId, customerId, riderId: uniqueId("rider") });
  // The customer's request budget spent, in this window and the next (the gateway's default 60 s).
  const windowMs = 60_000;
  const windowStart = Date.now() - (Date.now() % windowMs);
  for (const start of [windowStart, windowStart + windowMs])
    await fixture.db.set(
      keys.rateLimit(`customer:${customerId}`, start),
      "1000000",
      "PX",
      3 * windowMs,
    );
  const retrying: TrackingClientEvents["retrying"][] = [];
  const client = followOrder({
    gatewayUrl: fixture.gateway.url,
    orderId,
    token: await testToken(customerId, "customer"),
    backoff: { firstMs: 20, maxMs: 40 },
  });
  client.on("retrying", (event) => retrying.push(event));
  await waitUntil(() => retrying.length > 0);
  client.close();
  expect(String(retrying[0]?.error)).toContain("429");
  // Retry-After is whole seconds, at least 1: far above the 40 ms backoff.
  expect(retrying[0]?.delayMs).toBeGreaterThanOrEqual(1_000);
});

test("a lookup answer it cannot read (a captive portal's 200 page, JSON without url) is retried with backoff, not a hang", async () => {
  // What a phone behind a captive portal or a broken proxy gets, twice, before the real gateway.
  const answers = [
    () =>
      new Response("<html>Sign in to the Wi-Fi</html>", {
        headers: { "content-type": "text/html" },
      }),
    () => Response.json({ node: "t1" }),
  ];
  const portal = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (request) =>
      answers.shift()?.() ??
      fetch(`${fixture.gateway.url}${new URL(request.url).pathname}`, { headers: request.headers }),
  });
  const { client, seen, statuses } = await followed({
    gatewayUrl: `http://127.0.0.1:${portal.port}`,
  });
  try {
    await waitUntil(() => statuses() > 0);
    expect(client.state).toBe("open");
    expect(seen.retrying.map((event) => String(event.error))).toEqual([
      expect.stringContaining("unreadable"),
      expect.stringContaining("no socket url"),
    ]);
  } finally {
    client.close();
    await portal.stop(true);
  }
});

test("a frame it cannot read (a broken middlebox, a server bug) is not thrown at the app: it backs off and reconnects to the owner", async () => {
  // The socket the app was told about answers with a frame that is no TrackingEvent.
  const broken = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (request, server) =>
      server.upgrade(request, { headers: { "Sec-WebSocket-Protocol": "tracking.v2.json" } })
        ? undefined
        : new Response("upgrade expected", { status: 400 }),
    websocket: {
      open: (ws) => void ws.send("<html>not a frame</html>"),
      message: () => undefined,
    },
  });
  const { orderId, client, seen, statuses } = await followed({
    nodeUrl: `ws://127.0.0.1:${broken.port}`,
  });
  try {
    await waitUntil(() => statuses() > 0);
    expect(client.state).toBe("open");
    expect(client.nodeUrl).toBe(ownerOf(orderId).url);
    expect(seen.retrying).toHaveLength(1);
    expect(String(seen.retrying[0]?.error)).toContain("unreadable frame");
  } finally {
    client.close();
    await broken.stop(true);
  }
});
