import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { keys } from "../core/redis/keys";
import { freePort } from "../test/support/free-port";
import { seedOrder } from "../test/support/orders";
import { positionEvent } from "../test/support/positions";
import { clientFrameHeader, openRawWebSocket } from "../test/support/raw-websocket";
import { useRedisClient } from "../test/support/redis-connection";
import { TEST_JWT_SECRET, testToken, uniqueId } from "../test/support/tokens";
import {
  openWatcher,
  refusalStatus,
  spawnTrackingProcess,
  type TrackingProcess,
} from "../test/support/tracking";
import { waitUntil } from "../test/support/wait";

// One tracking node as its own process (its memory is measured from /proc),
// with a short ping interval and a small per-user socket share.
let node: TrackingProcess;
let port: number;

const fixture = useRedisClient({
  stopFirst: async () => {
    await node?.stop();
  },
});

beforeAll(async () => {
  node = await spawnTrackingProcess({
    REDIS_URL: fixture.redis.url,
    TRACKING_PING_INTERVAL_MS: "500",
    TRACKING_MAX_SOCKETS_PER_USER: "3",
    // An hour's window: no test here straddles one.
    TRACKING_MAX_WATCH_ATTEMPTS_PER_USER: "10",
    TRACKING_WATCH_ATTEMPTS_WINDOW_MS: "3600000",
  });
  port = Number(new URL(node.url).port);
});

async function newOrder() {
  const orderId = uniqueId("order");
  const customerId = uniqueId("cust");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.db, { orderId, customerId, riderId });
  return { orderId, customerId, riderId, path: `/v1/orders/${orderId}/track` };
}

const position = (orderId: string, riderId: string, seq: number) =>
  positionEvent(orderId, riderId, seq);

const metricValue = async (name: string, label: string) =>
  Number(new RegExp(`${label}[^\\n]* (\\d+)`).exec(await node.metric(name))?.[1] ?? 0);

describe("incoming frames", () => {
  test("a 15 MiB frame is refused (1009) as its header arrives, never buffered: the node's RSS stays flat", async () => {
    const { path } = await newOrder();
    const token = await testToken("limits-dispatcher", "dispatcher");
    const announced = 15 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const before = await node.rssBytes();
    for (let attempt = 0; attempt < 20; attempt++) {
      const client = await openRawWebSocket(port, `${path}?access_token=${token}`);
      await client.until(() => client.frames.length > 0);
      client.socket.write(Buffer.concat([clientFrameHeader(0x2, announced), chunk]));
      // Refused on the header: the close comes while 15 MiB are still to be sent.
      await client.until(() => client.closeCode() !== undefined);
      expect(client.closeCode()).toBe(1009);
      // The rest anyway, as an attacker would, until the node's side is gone.
      for (let written = chunk.length; written < announced && !client.socket.destroyed; ) {
        const flushed = client.socket.write(chunk);
        written += chunk.length;
        if (!flushed)
          await Promise.race([
            new Promise((resolve) => client.socket.once("drain", resolve)),
            client.closed,
          ]);
      }
      client.socket.destroy();
    }
    const after = await node.rssBytes();
    // Buffered whole, each frame would lift the peak by 15 MiB (main before this limit: +64 MB over 20).
    expect(after.now - before.now).toBeLessThan(16 * 1024 * 1024);
    expect(after.peak - before.peak).toBeLessThan(16 * 1024 * 1024);
    expect(
      await metricValue("edge_tracking_sockets_closed_total", 'reason="message too big"'),
    ).toBe(20);
  }, 30_000);

  test("a small frame is a protocol error (1008): clients only listen", async () => {
    const { path } = await newOrder();
    const token = await testToken("limits-dispatcher", "dispatcher");
    const client = await openRawWebSocket(port, `${path}?access_token=${token}`);
    await client.until(() => client.frames.length > 0);
    const header = clientFrameHeader(0x2, 5);
    client.socket.write(Buffer.concat([header, Buffer.from([1, 2, 3, 4, 5])]));
    await client.until(() => client.closeCode() !== undefined);
    expect(client.closeCode()).toBe(1008);
    client.socket.destroy();
  });
});

describe("heartbeat", () => {
  test("a socket that stops answering pings is dropped though positions keep flowing to it; one that answers stays", async () => {
    const { orderId, customerId, riderId, path } = await newOrder();
    const token = await testToken(customerId, "customer");
    const silent = await openRawWebSocket(port, `${path}?access_token=${token}`);
    const answering = await openWatcher(`${node.url}${path}?access_token=${token}`);
    await answering.waitForFrames(1);
    // Three seconds of positions, one every 100 ms: six ping intervals.
    for (let seq = 1; seq <= 30; seq++) {
      await fixture.db.publish(keys.orderTrack(orderId), position(orderId, riderId, seq));
      await Bun.sleep(100);
    }
    await silent.closed;
    expect(silent.frames.some((frame) => frame.opcode === 0x9)).toBe(true);
    expect(silent.frames.filter((frame) => frame.opcode === 0x1).length).toBeGreaterThan(1);
    await answering.waitForFrames(31);
    expect(answering.frames.at(-1)).toMatchObject({ type: "position", seq: 30 });
    expect(await metricValue("edge_tracking_sockets_closed_total", 'reason="no pong"')).toBe(1);
    answering.close();
  }, 15_000);
});

describe("sockets per identity", () => {
  test("a customer's 4th socket is refused 429 before the upgrade; others are not; a closed one frees a share", async () => {
    const { customerId, path } = await newOrder();
    const token = await testToken(customerId, "customer");
    const open = await Promise.all(
      [1, 2, 3].map(() => openWatcher(`${node.url}${path}?access_token=${token}`)),
    );
    const refused = await refusalStatus(node.httpUrl, `${path}?access_token=${token}`);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: "too_many_connections" });
    // When to look again: every 429 of the edge says (a closed socket frees a share at once).
    expect(refused.retryAfter).toBe("5");
    expect(refused.body.error.requestId).toMatch(/^[\w-]{8,}$/);
    expect(
      await metricValue("edge_tracking_upgrades_refused_total", 'code="too_many_connections"'),
    ).toBe(1);
    // Another customer, and the same customer's order watched by staff, are not held back.
    const other = await newOrder();
    const otherWatcher = await openWatcher(
      `${node.url}${other.path}?access_token=${await testToken(other.customerId, "customer")}`,
    );
    const staff = await testToken("limits-ops", "ops");
    const staffWatchers = await Promise.all(
      [1, 2, 3, 4].map(() => openWatcher(`${node.url}${path}?access_token=${staff}`)),
    );
    open[0]?.close();
    await open[0]?.closed;
    // The node frees the share when its side of the socket closes.
    await waitUntil(
      async () => (await metricValue("edge_tracking_sockets{", "")) === 2 + 1 + 4,
      5_000,
      "the closed socket gone from the node",
    );
    const again = await openWatcher(`${node.url}${path}?access_token=${token}`);
    await again.waitForFrames(1);
    for (const watcher of [...open.slice(1), again, otherWatcher, ...staffWatchers])
      watcher.close();
  });
});

describe("watch requests per identity", () => {
  test("past its budget a token gets 429 rate_limited with Retry-After before any order is read; others keep theirs", async () => {
    const token = await testToken(uniqueId("cust"), "customer");
    // Another customer's order, left untouched long enough that a read would show in its idle time.
    const { path } = await newOrder();
    const orderKey = keys.order(path.split("/")[3] ?? "");
    const idleSeconds = async () => Number(await fixture.db.object("IDLETIME", orderKey));
    const statuses: number[] = [];
    for (let n = 0; n < 10; n++)
      statuses.push(
        (
          await refusalStatus(
            node.httpUrl,
            `/v1/orders/${uniqueId("nope")}/track?access_token=${token}`,
          )
        ).status,
      );
    expect(statuses).toEqual(Array(10).fill(404));
    await waitUntil(async () => (await idleSeconds()) >= 2, 10_000, "the order key idle");
    for (let n = 0; n < 20; n++) {
      const response = await fetch(`${node.httpUrl}${path}?access_token=${token}`, {
        headers: {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-version": "13",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
      });
      expect(response.status).toBe(429);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        "rate_limited",
      );
      const retryAfter = Number(response.headers.get("retry-after"));
      expect(retryAfter >= 1 && retryAfter <= 3600).toBe(true);
    }
    // Refused before the order's record was asked for (a read would reset its idle time to 0).
    expect(await idleSeconds()).toBeGreaterThanOrEqual(1);
    // Named once in the log for the operator, not once per refusal.
    const sub = (JSON.parse(atob(token.split(".")[1] ?? "")) as { sub: string }).sub;
    const throttled = () =>
      node.logs.filter(
        (line) => line.msg === "watch requests throttled" && (line as { sub?: string }).sub === sub,
      );
    await waitUntil(() => throttled().length > 0, 5_000, "the throttled token logged");
    expect(throttled()).toEqual([expect.objectContaining({ level: 40, role: "customer", sub })]);
    expect(await metricValue("edge_tracking_upgrades_refused_total", 'code="rate_limited"')).toBe(
      20,
    );
    // Another customer has its own budget.
    const other = await testToken(uniqueId("cust"), "customer");
    expect(
      (
        await refusalStatus(
          node.httpUrl,
          `/v1/orders/${uniqueId("nope")}/track?access_token=${other}`,
        )
      ).status,
    ).toBe(404);
  });
});

describe("subprotocols", () => {
  test("the answer is the first frame subprotocol offered, or none; never the bearer token", async () => {
    const { path } = await newOrder();
    const token = await testToken("limits-dispatcher-2", "dispatcher");
    const answer = async (offer: string | undefined, query = "") => {
      const client = await openRawWebSocket(
        port,
        `${path}${query}`,
        offer === undefined ? {} : { "Sec-WebSocket-Protocol": offer },
      );
      // The first data frame (a ping may come first: this node pings every 500 ms).
      const data = () => client.frames.find((frame) => frame.opcode < 0x8);
      await client.until(() => data() !== undefined);
      client.socket.destroy();
      expect(client.head).toStartWith("HTTP/1.1 101");
      expect(client.head).not.toContain(token);
      return {
        protocol: /^sec-websocket-protocol: (.*)$/im.exec(client.head)?.[1],
        opcode: data()?.opcode,
      };
    };
    expect(await answer(`bearer.${token}, tracking.v1.proto`)).toEqual({
      protocol: "tracking.v1.proto",
      opcode: 0x2,
    });
    expect(await answer(`tracking.v1.json, tracking.v1.proto, bearer.${token}`)).toEqual({
      protocol: "tracking.v1.json",
      opcode: 0x1,
    });
    expect(await answer(`tracking.v1.proto, tracking.v1.json, bearer.${token}`)).toEqual({
      protocol: "tracking.v1.proto",
      opcode: 0x2,
    });
    expect(await answer(`tracking.v2.json, tracking.v1.proto, bearer.${token}`)).toEqual({
      protocol: "tracking.v2.json",
      opcode: 0x1,
    });
    expect(await answer(undefined, `?access_token=${token}`)).toEqual({
      protocol: undefined,
      opcode: 0x1,
    });
  });

  test("offers with no frame subprotocol among them are refused 400 before the upgrade, not a 101 the client must fail", async () => {
    const { path } = await newOrder();
    const token = await testToken("limits-dispatcher-3", "dispatcher");
    const opened = await metricValue("edge_tracking_sockets_opened_total", "");
    for (const [offer, query] of [
      [`bearer.${token}`, ""],
      [`bearer.${token}, tracking.v3.json`, ""],
      ["chat", `?access_token=${token}`],
    ] as const) {
      const response = await fetch(`${node.httpUrl}${path}${query}`, {
        headers: {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-version": "13",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-protocol": offer,
        },
      });
      const text = await response.text();
      expect({ offer: offer.slice(0, 12), status: response.status }).toEqual({
        offer: offer.slice(0, 12),
        status: 400,
      });
      const body = JSON.parse(text) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("bad_request");
      expect(body.error.message).toContain("tracking.v2.json");
      expect(text).not.toContain(token);
      expect(response.headers.get("sec-websocket-protocol")).toBeNull();
    }
    expect(await metricValue("edge_tracking_sockets_opened_total", "")).toBe(opened);
  });
});

describe("bad requests", () => {
  test("each is answered with its status and the JSON error shape, never a 500 nor an error log", async () => {
    const { path } = await newOrder();
    const token = await testToken("limits-dispatcher", "dispatcher");
    const cases: [string, Record<string, string>, number, string][] = [
      ["/v1/orders/%ZZ/track", {}, 400, "bad_request"],
      ["/v1/orders/%E0%A4%A/track", {}, 400, "bad_request"],
      ["/v1/orders/a%7Bb%7D/track", {}, 400, "bad_request"],
      [`/v1/orders/${"x".repeat(65)}/track`, {}, 400, "bad_request"],
      [`${path}?access_token=${token}&afterSeq=%ZZ`, {}, 400, "bad_request"],
      [`${path}?afterSeq=1`, {}, 401, "unauthenticated"],
      [`${path}?access_token=${"q".repeat(20_000)}`, {}, 431, "headers_too_large"],
      [
        `${path}?access_token=${token}`,
        { "x-padding": "p".repeat(20_000) },
        431,
        "headers_too_large",
      ],
      ["/v1/orders", {}, 404, "not_found"],
    ];
    for (const afterSeq of ["0x10", "1e3", "+1", "%201", "1.5", "-1", "", "18446744073709551616"])
      cases.push([`${path}?access_token=${token}&afterSeq=${afterSeq}`, {}, 400, "bad_request"]);
    for (const [target, headers, status, code] of cases) {
      const response = await fetch(`${node.httpUrl}${target}`, {
        headers: {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-version": "13",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          ...headers,
        },
      });
      const body = (await response.json()) as { error: { code: string; requestId: string } };
      expect({
        target: target.slice(0, 80),
        status: response.status,
        code: body.error.code,
      }).toEqual({ target: target.slice(0, 80), status, code });
      expect(body.error.requestId).toBe(response.headers.get("x-request-id") ?? "missing");
    }
    // Past the parser's own wall (64 KiB) the engine answers a bare 431 before any handler runs.
    const huge = await fetch(`${node.httpUrl}${path}`, {
      headers: { "x-padding": "p".repeat(70_000) },
    });
    expect(huge.status).toBe(431);
    expect(node.logs.filter((line) => line.level >= 50)).toEqual([]);
    expect(node.logs.some((line) => line.msg === "watch request refused")).toBe(true);
  });
});

describe("connection events", () => {
  test("every socket opened is counted; client closes by code; every open, close and refusal logged at debug with its reason", async () => {
    const { orderId, customerId, path } = await newOrder();
    const opened = await metricValue("edge_tracking_sockets_opened_total", "");
    // A WebSocket client's close() sends no status code: the node sees 1005.
    const normal = await metricValue("edge_tracking_client_closes_total", 'code="1005"');
    const token = await testToken(customerId, "customer");
    const watcher = await openWatcher(`${node.url}${path}?access_token=${token}`);
    await watcher.waitForFrames(1);
    watcher.close();
    await watcher.closed;
    // The server closes this one: clients only listen (1008).
    const raw = await openRawWebSocket(port, `${path}?access_token=${token}`);
    await raw.until(() => raw.frames.length > 0);
    raw.socket.write(Buffer.concat([clientFrameHeader(0x2, 1), Buffer.from([1])]));
    await raw.until(() => raw.closeCode() !== undefined);
    raw.socket.destroy();
    expect((await refusalStatus(node.httpUrl, `${path}?access_token=forged`)).status).toBe(401);

    await waitUntil(
      async () =>
        (await metricValue("edge_tracking_client_closes_total", 'code="1005"')) === normal + 1,
      5_000,
      "the client's close counted",
    );
    expect(await metricValue("edge_tracking_sockets_opened_total", "")).toBe(opened + 2);
    const lines = () => node.logs as unknown as Record<string, unknown>[];
    await waitUntil(
      () =>
        lines().filter((l) => l.msg === "watch socket closed" && l.orderId === orderId).length ===
        2,
      5_000,
      "both closes logged",
    );
    const ofOrder = lines().filter((l) => l.orderId === orderId && l.level === 20);
    expect(ofOrder.filter((l) => l.msg === "watch socket opened")).toHaveLength(2);
    expect(ofOrder.filter((l) => l.msg === "watch socket closed")).toEqual([
      expect.objectContaining({ by: "client", code: 1005 }),
      expect.objectContaining({ by: "server", reason: "clients do not send frames" }),
    ]);
    expect(lines()).toContainEqual(
      expect.objectContaining({ level: 20, msg: "watch request refused", code: "unauthenticated" }),
    );
  }, 20_000);
});

test("a second node started with a live node's TRACKING_NODE_ID refuses to start (exit 2) and leaves the live node's URL alone", async () => {
  const urls = await fixture.db.hgetall(keys.trackingNodeUrls());
  const id = Object.keys(urls).find((nodeId) => urls[nodeId] === node.url);
  if (!id) throw new Error("the node is not in the registry");
  const otherPort = await freePort();
  const twin = spawnNode(id, otherPort);
  expect(await twin.exited).toBe(2);
  expect(await new Response(twin.stdout).text()).toContain(
    `TRACKING_NODE_ID: used by a live node at ${node.url}`,
  );
  expect(await fixture.db.hget(keys.trackingNodeUrls(), id)).toBe(node.url);
});

/** `tracking/main.ts` with `id` on `port`, its stdout kept for the refusal line. */
function spawnNode(id: string, port: number) {
  return Bun.spawn([process.execPath, join(import.meta.dir, "main.ts")], {
    env: {
      PATH: process.env.PATH,
      REDIS_URL: fixture.redis.url,
      JWT_SECRET: TEST_JWT_SECRET,
      TRACKING_PORT: String(port),
      TRACKING_NODE_ID: id,
      TRACKING_PUBLIC_URL: `ws://127.0.0.1:${port}`,
      TRACKING_HEARTBEAT_MS: "100",
      TRACKING_RING_REFRESH_MS: "100",
      TRACKING_NODE_TTL_MS: "1000",
    },
    stdout: "pipe",
    stderr: "inherit",
  });
}

test("two nodes started with the same TRACKING_NODE_ID at the same moment: exactly one runs, the other exits 2 naming the variable", async () => {
  const id = uniqueId("twin");
  const ports = [await freePort(), await freePort()];
  // Redis holds every write for 3 s while both processes start: both reach the id check before
  // either has written (a check-then-write lets both in; the atomic claim lets in one).
  await fixture.db.call("CLIENT", "PAUSE", "3000", "WRITE");
  const twins = ports.map((p) => spawnNode(id, p));
  try {
    // The loser waits one TTL for the winner's claim to lapse, sees it renewed, and exits.
    const loser = await Promise.race([
      ...twins.map((twin, i) => twin.exited.then(() => i)),
      Bun.sleep(10_000).then(() => -1),
    ]);
    if (loser === -1) throw new Error("both nodes with one id still run after 10 s");
    const winner = 1 - loser;
    expect(await twins[loser]?.exited).toBe(2);
    expect(await new Response(twins[loser]?.stdout).text()).toContain(
      `TRACKING_NODE_ID: used by a live node at ws://127.0.0.1:${ports[winner]}`,
    );
    // The winner serves and is the id's one URL in the registry.
    expect((await fetch(`http://127.0.0.1:${ports[winner]}/healthz`)).status).toBe(200);
    expect(await fixture.db.hget(keys.trackingNodeUrls(), id)).toBe(
      `ws://127.0.0.1:${ports[winner]}`,
    );
    expect(twins[winner]?.exitCode).toBeNull();
  } finally {
    for (const twin of twins) twin.kill("SIGKILL");
    await Promise.all(twins.map((twin) => twin.exited));
  }
}, 20_000);

test("a node that crashed takes its id back at the same URL once its claim lapses", async () => {
  const id = uniqueId("crashed");
  const crashed = await spawnTrackingProcess({
    REDIS_URL: fixture.redis.url,
    TRACKING_NODE_ID: id,
  });
  await crashed.kill();
  const again = await spawnTrackingProcess({
    REDIS_URL: fixture.redis.url,
    TRACKING_NODE_ID: id,
    TRACKING_PORT: new URL(crashed.url).port,
  });
  try {
    await waitUntil(
      async () => Date.now() - Number(await fixture.db.zscore(keys.trackingNodes(), id)) < 500,
      5_000,
      "the restarted node beating",
    );
    expect(await fixture.db.hget(keys.trackingNodeUrls(), id)).toBe(again.url);
  } finally {
    await again.stop();
  }
}, 20_000);
