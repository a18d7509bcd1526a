import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import { createTokenVerifier } from "../core/auth/token-verifier";
import { statusEventJson } from "../core/messages/tracking-events";
import { CLOSE, type FrameFormat, TRACKING_SUBPROTOCOLS } from "../core/protocol/tracking-protocol";
import { TrackingEventSchema } from "../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { positionEvent } from "../test/support/positions";
import { openRawWebSocket } from "../test/support/raw-websocket";
import { TEST_JWT_SECRET } from "../test/support/tokens";
import { openWatcher, type TestWatcher } from "../test/support/tracking";
import { eventFrame, type OutgoingFrame } from "./frames";
import { createTrackingMetrics } from "./metrics";
import type { WatcherData, WatcherSocket } from "./watcher-socket";
import { createWatchers } from "./watchers";

// The fan-out on its own: a bare Bun.serve wired as tracking-app.ts wires it,
// real sockets, and frames handed to it as order-watch.ts hands them over.
const registry = new Registry();
const metrics = createTrackingMetrics(registry, () => 0);
const LIMITS = {
  conflateAboveBytes: 65_536,
  closeAboveBytes: 256 * 1024 * 1024,
  closeAfterStuckMs: 60_000,
};
const RESTART_AFTER_MS = 120_000;
let watchers: ReturnType<typeof createWatchers>;
let server: ReturnType<typeof Bun.serve<WatcherData>>;
const serverSockets: WatcherSocket[] = [];

beforeAll(() => {
  watchers = createWatchers({
    metrics,
    limits: LIMITS,
    seqRestartAfterMs: RESTART_AFTER_MS,
    publish: (topic, data) => server.publish(topic, data, false),
    // Its tokens have no signing key to revoke (HS256): they end at exp only.
    revocations: createTokenVerifier({ secret: TEST_JWT_SECRET }),
  });
  server = Bun.serve<WatcherData>({
    port: 0,
    hostname: "127.0.0.1",
    fetch(request, server) {
      const url = new URL(request.url);
      const format = (url.searchParams.get("format") ?? "json") as FrameFormat;
      const afterSeq = url.searchParams.get("afterSeq");
      const data: WatcherData = {
        orderId: url.pathname.slice(1),
        format,
        identity: {
          sub: "c1",
          role: "customer",
          exp: Number(url.searchParams.get("exp") ?? Date.now() / 1000 + 3600),
        },
        quotaKey: "c1",
        ...(afterSeq ? { afterSeq: BigInt(afterSeq) } : {}),
        statusVersion: 0,
        awaitingPong: false,
        closing: false,
        inStep: false,
      };
      const headers = { "Sec-WebSocket-Protocol": TRACKING_SUBPROTOCOLS[format] };
      return server.upgrade(request, { data, headers })
        ? undefined
        : new Response(null, { status: 400 });
    },
    websocket: {
      open(ws) {
        serverSockets.push(ws);
        watchers.add(ws);
      },
      drain: (ws) => watchers.drained(ws),
      close(ws) {
        ws.data.closing = true;
        watchers.remove(ws);
      },
      message() {},
    },
  });
});

afterAll(() => server?.stop(true));

let orders = 0;
const newOrder = () => `fan-${process.pid}-${++orders}`;

async function watch(
  orderId: string,
  format: FrameFormat = "json",
  query = "",
): Promise<TestWatcher> {
  const opened = serverSockets.length;
  const watcher = await openWatcher(
    `ws://127.0.0.1:${server.port}/${orderId}?format=${format}${query}`,
    {
      protocols: [TRACKING_SUBPROTOCOLS[format]],
      binary: (bytes) => fromBinary(TrackingEventSchema, bytes),
    },
  );
  // The server's open handler has run once the client sees the 101; wait for it anyway.
  while (serverSockets.length === opened) await Bun.sleep(1);
  return watcher;
}

const serverSide = (orderId: string) => [...watchers.forOrder(orderId)];

function frame(orderId: string, json: string, snapshot = false): OutgoingFrame {
  const built = eventFrame(orderId, json, { snapshot });
  if (!built) throw new Error(`bad frame ${json}`);
  return built;
}

const position = (orderId: string, seq: number, riderId = "r1", at?: number) =>
  frame(orderId, positionEvent(orderId, riderId, seq, at));

/** The seq of each position frame a watcher got, whatever its format. */
function seqs(watcher: TestWatcher): string[] {
  return watcher.frames.flatMap((received) => {
    const event = received as Record<string, unknown> & {
      position?: { seq: unknown };
      event?: { case: string; value: { seq: bigint } };
    };
    if (event.position) return [String(event.position.seq)];
    if (event.type === "position") return [String(event.seq)];
    if (event.event?.case === "position") return [String(event.event.value.seq)];
    return [];
  });
}

async function sentTotal(): Promise<number> {
  const metric = await registry.getSingleMetric("edge_tracking_frames_sent_total")?.get();
  return (metric?.values ?? []).reduce((sum, value) => sum + value.value, 0);
}

describe("live positions", () => {
  test("watchers of every format get the same positions in seq order, through the order's topics, counted in bulk", async () => {
    const orderId = newOrder();
    const formats: FrameFormat[] = ["json", "proto", "legacyJson", "json"];
    const sockets = await Promise.all(formats.map((format) => watch(orderId, format)));
    const before = await sentTotal();
    // A replay (3 again) and a late one (2) are skipped; a lower seq long after the last is a restart.
    const old = Date.now() - RESTART_AFTER_MS - 10_000;
    for (const [seq, at] of [
      [1, old],
      [2, old],
      [3, old],
      [3, old],
      [2, old],
      [1, undefined],
      [2, undefined],
    ] as const)
      watchers.broadcast(orderId, position(orderId, seq, "r1", at));
    await Promise.all(sockets.map((socket) => socket.waitForFrames(5)));
    for (const socket of sockets) expect(seqs(socket)).toEqual(["1", "2", "3", "1", "2"]);
    expect(serverSide(orderId).every((ws) => ws.data.inStep)).toBe(true);
    expect((await sentTotal()) - before).toBe(5 * sockets.length);
    for (const socket of sockets) socket.close();
  });

  test("a snapshot newer than the live stream holds that socket back alone until the stream passes it, then it rejoins", async () => {
    const orderId = newOrder();
    const early = await watch(orderId);
    watchers.broadcast(orderId, position(orderId, 8));
    await early.waitForFrames(1);
    const late = await watch(orderId);
    const lateSide = serverSide(orderId).find(
      (ws) => !ws.data.inStep && ws.data.lastPosition === undefined,
    );
    if (!lateSide) throw new Error("the new socket should wait for the stream");
    // The new socket's snapshot read found seq 10 (its live event is still on its way).
    watchers.deliver(lateSide, frame(orderId, positionEvent(orderId, "r1", 10), true));
    watchers.broadcast(orderId, position(orderId, 9));
    watchers.broadcast(orderId, position(orderId, 10));
    watchers.broadcast(orderId, position(orderId, 11));
    await early.waitForFrames(4);
    await late.waitForFrames(2);
    expect(seqs(early)).toEqual(["8", "9", "10", "11"]);
    expect(seqs(late)).toEqual(["10", "11"]);
    expect(lateSide.data.inStep).toBe(true);
    watchers.broadcast(orderId, position(orderId, 12));
    await late.waitForFrames(3);
    expect(seqs(late)).toEqual(["10", "11", "12"]);
    early.close();
    late.close();
  });

  test("a position sent to one in-step socket alone takes it out of step: an older live one is skipped for it only", async () => {
    const orderId = newOrder();
    const [a, b] = [await watch(orderId), await watch(orderId)];
    watchers.broadcast(orderId, position(orderId, 5));
    await Promise.all([a.waitForFrames(1), b.waitForFrames(1)]);
    const [aSide] = serverSide(orderId);
    if (!aSide?.data.inStep) throw new Error("expected the socket in step");
    watchers.deliver(aSide, frame(orderId, positionEvent(orderId, "r1", 7), true));
    watchers.broadcast(orderId, position(orderId, 6));
    watchers.broadcast(orderId, position(orderId, 8));
    await Promise.all([a.waitForFrames(3), b.waitForFrames(3)]);
    expect(seqs(a)).toEqual(["5", "7", "8"]);
    expect(seqs(b)).toEqual(["5", "6", "8"]);
    a.close();
    b.close();
  });

  test("?afterSeq= skips what the client has, and a new rider's seq counts from its own start", async () => {
    const orderId = newOrder();
    const inStep = await watch(orderId);
    const resumed = await watch(orderId, "json", "&afterSeq=5");
    // Received by the ingest before the client connected: afterSeq judges them by seq alone.
    const before = Date.now() - 1_000;
    for (const seq of [4, 5, 6]) watchers.broadcast(orderId, position(orderId, seq, "r1", before));
    watchers.broadcast(orderId, position(orderId, 1, "r2", before));
    watchers.broadcast(orderId, position(orderId, 2, "r2", before));
    await inStep.waitForFrames(5);
    await resumed.waitForFrames(3);
    expect(seqs(inStep)).toEqual(["4", "5", "6", "1", "2"]);
    expect(seqs(resumed)).toEqual(["6", "1", "2"]);
    inStep.close();
    resumed.close();
  });

  test("statuses go to every socket, in version order, between the positions as they came", async () => {
    const orderId = newOrder();
    const a = await watch(orderId);
    const b = await watch(orderId, "legacyJson");
    const status = (version: number) =>
      frame(orderId, statusEventJson(orderId, { status: "PICKED_UP", version, riderId: "r1" }));
    watchers.broadcast(orderId, position(orderId, 1));
    watchers.broadcast(orderId, status(5));
    watchers.broadcast(orderId, position(orderId, 2));
    watchers.broadcast(orderId, status(4));
    await a.waitForFrames(3);
    await b.waitForFrames(3);
    expect(a.frames.map((f) => Object.keys(f as object)[1])).toEqual([
      "position",
      "status",
      "position",
    ]);
    expect(b.frames.map((f) => (f as { type: string }).type)).toEqual([
      "position",
      "status",
      "position",
    ]);
    a.close();
    b.close();
  });
});

describe("slow phones", () => {
  test("a congested socket leaves the topic and gets only the newest position when it drains, then rejoins; its neighbour gets every frame", async () => {
    const orderId = newOrder();
    const healthy = await watch(orderId);
    const opened = serverSockets.length;
    const stalled = await openRawWebSocket(server.port ?? 0, `/${orderId}?format=json`, {
      "Sec-WebSocket-Protocol": TRACKING_SUBPROTOCOLS.json,
    });
    stalled.socket.pause();
    while (serverSockets.length === opened) await Bun.sleep(1);
    const stalledSide = serverSockets.at(-1) as WatcherSocket;
    const padded = (seq: number) => {
      const event = JSON.parse(positionEvent(orderId, "r1", seq));
      return frame(orderId, JSON.stringify({ ...event, padding: "x".repeat(65_536) }));
    };
    // Far more than the kernel's buffers hold; the engine's writes happen between events.
    for (let seq = 1; seq <= 200; seq++) {
      watchers.broadcast(orderId, padded(seq));
      if (seq % 10 === 0) await Bun.sleep(1);
    }
    await healthy.waitForFrames(200, 15_000);
    expect(seqs(healthy)).toEqual(Array.from({ length: 200 }, (_, i) => String(i + 1)));
    expect(stalledSide.data.inStep).toBe(false);
    expect(stalledSide.data.pending).toBeDefined();
    stalled.socket.resume();
    await stalled.until(
      () => stalled.frames.some((f) => f.payload.toString().includes('"seq":"200"')),
      15_000,
    );
    const got = stalled.frames.map((f) => JSON.parse(f.payload.toString()).position.seq as string);
    expect(got.length).toBeLessThan(200);
    expect(got.map(Number)).toEqual([...got.map(Number)].sort((x, y) => x - y));
    watchers.broadcast(orderId, position(orderId, 201));
    await stalled.until(() => stalled.frames.length === got.length + 1);
    expect(stalledSide.data.inStep).toBe(true);
    healthy.close();
    stalled.socket.destroy();
  }, 30_000);
});

describe("tokens", () => {
  test("a socket is closed 4401 when its token expires, with no event to trigger it; its neighbour stays", async () => {
    const orderId = newOrder();
    const expiring = await watch(orderId, "json", `&exp=${Date.now() / 1000 + 0.3}`);
    const lasting = await watch(orderId);
    expect(await expiring.closed).toEqual({
      code: CLOSE.tokenExpired.code,
      reason: CLOSE.tokenExpired.reason,
    });
    watchers.broadcast(orderId, position(orderId, 1));
    await lasting.waitForFrames(1);
    expect(serverSide(orderId)).toHaveLength(1);
    lasting.close();
  });
});
