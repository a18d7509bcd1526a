import { describe, expect, test } from "bun:test";
import type { Redis } from "ioredis";
import pino from "pino";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { useScriptConnections } from "../../test/support/script-connections";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import type { LiveStream } from "./live-stream";
import { createRiderInbox } from "./rider-inbox";
import { createGenerationSettler, drawStreamGeneration } from "./stream-generation";

const connections = useScriptConnections();

/** The rider's generation keys gone at once, as when Redis restarts empty. */
const loseGenerationKeys = (connection: RedisConnection, riderId: string) =>
  connection.client.del(
    keys.riderStream(riderId),
    keys.riderStreamOpened(riderId),
    keys.riderStreamHolder(riderId),
  );

/** A live stream of a node whose session clock is `now`, opened `ageMs` ago, holding `generation`. */
function liveStream(now: () => number, ageMs: number, generation: number): LiveStream {
  return {
    events: { offer: () => undefined, end: () => undefined },
    city: "london",
    id: uniqueId("stream"),
    openedAtMs: now() - ageMs,
    generation,
    announced: Promise.resolve(),
    highestSeen: 0,
    lastOfferSeq: 0,
    ended: false,
  };
}

describe.each(["standalone", "cluster"] as const)("draw-stream-generation.lua on %s", (mode) => {
  const on = (): RedisConnection => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    return connection;
  };

  test("a new stream always draws the next generation; a recheck keeps, supersedes or draws anew", async () => {
    const connection = on();
    const riderId = uniqueId("rider");
    const draw = (id: string, ageMs: number, held?: number) =>
      drawStreamGeneration(connection, riderId, { id, ageMs, held });
    // A new stream draws even when the holder opened after it.
    expect(await draw("a", 0)).toEqual({ status: "drawn", generation: 1 });
    expect(await draw("b", 10_000)).toEqual({ status: "drawn", generation: 2 });
    expect(await connection.client.get(keys.riderStreamHolder(riderId))).toBe("b");
    expect(await draw("b", 10_000, 2)).toEqual({ status: "kept", generation: 2 });
    expect(await draw("a", 0, 1)).toEqual({ status: "superseded", generation: 2 });
    // Holding none (its draw failed): superseded by a holder opened after it, else it draws.
    expect(await draw("c", 20_000, 0)).toEqual({ status: "superseded", generation: 2 });
    expect(await draw("d", 0, 0)).toEqual({ status: "drawn", generation: 3 });
    // The counter was lost: the stream draws again from nothing.
    await loseGenerationKeys(connection, riderId);
    expect(await draw("d", 0, 3)).toEqual({ status: "drawn", generation: 1 });
    for (const key of [
      keys.riderStream(riderId),
      keys.riderStreamOpened(riderId),
      keys.riderStreamHolder(riderId),
    ])
      expect(await connection.client.ttl(key)).toBeGreaterThan(0);
  });

  test("the same generation drawn twice after Redis lost the counter: only the stream opened last keeps it", async () => {
    const connection = on();
    for (const s2OpenedFirst of [false, true]) {
      const riderId = uniqueId("rider");
      const s1 = { id: uniqueId("s1"), openedAt: Date.now() - 1_000 };
      const ageOf = (stream: { openedAt: number }) => Date.now() - stream.openedAt;
      expect(
        await drawStreamGeneration(connection, riderId, { id: s1.id, ageMs: ageOf(s1) }),
      ).toEqual({ status: "drawn", generation: 1 });
      await loseGenerationKeys(connection, riderId);
      // S2 opened after S1 and drew at once, or before it (its draw failed) and draws now, held 0.
      const s2 = { id: uniqueId("s2"), openedAt: s2OpenedFirst ? s1.openedAt - 5_000 : Date.now() };
      expect(
        await drawStreamGeneration(connection, riderId, {
          id: s2.id,
          ageMs: ageOf(s2),
          held: s2OpenedFirst ? 0 : undefined,
        }),
      ).toEqual({ status: "drawn", generation: 1 });
      const s1Recheck = await drawStreamGeneration(connection, riderId, {
        id: s1.id,
        ageMs: ageOf(s1),
        held: 1,
      });
      const s2Recheck = await drawStreamGeneration(connection, riderId, {
        id: s2.id,
        ageMs: ageOf(s2),
        held: 1,
      });
      // Before the holder was recorded both rechecks answered "kept 1": two live streams.
      expect([s1Recheck, s2Recheck]).toEqual(
        s2OpenedFirst
          ? [
              { status: "drawn", generation: 2 },
              { status: "superseded", generation: 2 },
            ]
          : [
              { status: "superseded", generation: 1 },
              { status: "kept", generation: 1 },
            ],
      );
    }
  });

  test("streams that held no generation rechecking at once: the one opened last ends up holding the newest", async () => {
    const connection = on();
    const riderId = uniqueId("rider");
    // Seconds apart, so the few ms between the scripts' TIME readings cannot reorder them.
    const ageMs = Array.from({ length: 30 }, (_, index) => 1_000 * (1 + ((index * 7) % 30)));
    const draws = await Promise.all(
      ageMs.map((age, index) =>
        drawStreamGeneration(connection, riderId, { id: `s${index}`, ageMs: age, held: 0 }),
      ),
    );
    const drawn = draws
      .filter(({ status }) => status === "drawn")
      .map(({ generation }) => generation);
    const newest = Math.max(...drawn);
    // Drawn generations are distinct, and the newest went to the stream opened last.
    expect(new Set(drawn).size).toBe(drawn.length);
    expect(
      ageMs[
        draws.findIndex(({ generation, status }) => status === "drawn" && generation === newest)
      ],
    ).toBe(Math.min(...ageMs));
    expect(await connection.client.get(keys.riderStream(riderId))).toBe(String(newest));
  });
});

test("node clocks skewed by 5 s either way: the stream that really opened last keeps the rider, whatever each node's clock says", async () => {
  const connection = connections.standalone;
  if (!connection) throw new Error("no connection");
  const logger = pino({ level: "silent" });
  const inbox = createRiderInbox(connection, logger);
  for (const skewMs of [-5_000, 5_000]) {
    const riderId = uniqueId("rider");
    const superseded: LiveStream[] = [];
    const nodeSettler = (now: () => number) =>
      createGenerationSettler({
        connection,
        inbox,
        now,
        logger,
        supersede: (_riderId, stream) => superseded.push(stream),
      });
    const [nodeA, nodeB] = [() => Date.now(), () => Date.now() + skewMs];
    // S1 opened on node A a second ago and S2 on node B just now; both draws failed (held 0).
    const [s1, s2] = [liveStream(nodeA, 1_000, 0), liveStream(nodeB, 0, 0)];
    await nodeSettler(nodeB)(riderId, s2, "recheck");
    await nodeSettler(nodeA)(riderId, s1, "recheck");
    // With opening times compared across nodes, B 5 s behind made S2 look older: S1 drew and ended it.
    expect([superseded, s1.generation, s2.generation]).toEqual([[s1], 0, 1]);
    expect(await connection.client.get(keys.riderStreamHolder(riderId))).toBe(s2.id);
  }
});

test("a stream that ended before its draw (open or recheck) draws nothing, and one that ends while its recheck draws announces nothing", async () => {
  const connection = connections.standalone;
  if (!connection) throw new Error("no connection");
  const riderId = uniqueId("rider");
  const heard: string[] = [];
  const listener = (connection.client as Redis).duplicate();
  await new Promise((ready) => listener.once("ready", ready));
  await listener.subscribe(keys.riderInbox(riderId));
  listener.on("message", (_channel: string, message: string) => heard.push(message));
  const logger = pino({ level: "silent" });
  const superseded: LiveStream[] = [];
  const inbox = createRiderInbox(connection, logger);
  const stopListening = inbox.listen(riderId, { message: () => undefined, gap: () => undefined });
  const settle = createGenerationSettler({
    connection,
    inbox,
    now: Date.now,
    logger,
    supersede: (_riderId, stream) => superseded.push(stream),
  });
  try {
    // Released before its draw (an open waits for the inbox subscription first): no INCR.
    for (const kind of ["open", "recheck"] as const) {
      const ended = { ...liveStream(Date.now, 0, 0), ended: true };
      await settle(riderId, ended, kind);
      expect(ended.generation).toBe(0);
    }
    expect(await connection.client.get(keys.riderStream(riderId))).toBeNull();
    const stream = liveStream(Date.now, 0, 0);
    const rechecked = settle(riderId, stream, "recheck");
    stream.ended = true; // released while the script is out
    await rechecked;
    // A later message on the channel arrives after any announcement the recheck made.
    await connection.client.publish(keys.riderInbox(riderId), "marker");
    await waitUntil(() => heard.includes("marker"), 4_000, "the marker");
    expect([heard, superseded.length]).toEqual([["marker"], 0]);
    expect(await connection.client.get(keys.riderStream(riderId))).toBe("1");
  } finally {
    stopListening();
    listener.disconnect();
  }
});
