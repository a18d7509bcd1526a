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

describe.each(["standalone", "cluster"] as const)("draw-stream-generation.lua on %s", (mode) => {
  const on = (): RedisConnection => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    return connection;
  };

  test("a new stream always draws the next generation; a recheck keeps, supersedes or draws anew", async () => {
    const connection = on();
    const riderId = uniqueId("rider");
    const draw = (openedAtMs: number, held?: number) =>
      drawStreamGeneration(connection, riderId, { openedAtMs, held });
    // A new stream draws even when a stream opened after it holds the counter.
    expect(await draw(2_000)).toEqual({ status: "drawn", generation: 1 });
    expect(await draw(1_000)).toEqual({ status: "drawn", generation: 2 });
    expect(await connection.client.get(keys.riderStreamOpened(riderId))).toBe("1000");
    expect(await draw(1_000, 2)).toEqual({ status: "kept", generation: 2 });
    expect(await draw(2_000, 1)).toEqual({ status: "superseded", generation: 2 });
    // Holding none (its draw failed): superseded by a stream opened after it, else it draws.
    expect(await draw(999, 0)).toEqual({ status: "superseded", generation: 2 });
    expect(await draw(1_000, 0)).toEqual({ status: "drawn", generation: 3 });
    // The counter was lost: the stream draws again from nothing.
    await connection.client.del(keys.riderStream(riderId));
    await connection.client.del(keys.riderStreamOpened(riderId));
    expect(await draw(1_000, 3)).toEqual({ status: "drawn", generation: 1 });
    expect(await connection.client.ttl(keys.riderStreamOpened(riderId))).toBeGreaterThan(0);
    expect(await connection.client.ttl(keys.riderStream(riderId))).toBeGreaterThan(0);
  });

  test("streams that held no generation rechecking at once: the one opened last ends up holding the newest", async () => {
    const connection = on();
    const riderId = uniqueId("rider");
    const openedAt = Array.from({ length: 30 }, (_, index) => 1_000 + ((index * 7) % 30));
    const draws = await Promise.all(
      openedAt.map((openedAtMs) =>
        drawStreamGeneration(connection, riderId, { openedAtMs, held: 0 }),
      ),
    );
    const drawn = draws
      .filter(({ status }) => status === "drawn")
      .map(({ generation }) => generation);
    const newest = Math.max(...drawn);
    // Drawn generations are distinct, and the newest went to the stream opened last.
    expect(new Set(drawn).size).toBe(drawn.length);
    expect(
      openedAt[
        draws.findIndex(({ generation, status }) => status === "drawn" && generation === newest)
      ],
    ).toBe(Math.max(...openedAt));
    expect(await connection.client.get(keys.riderStream(riderId))).toBe(String(newest));
  });
});

test("a stream that ends while its recheck draws announces nothing: the rider closed it, so it ends no older stream elsewhere", async () => {
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
  const settle = createGenerationSettler({
    connection,
    inbox: createRiderInbox(connection, logger),
    logger,
    supersede: (_riderId, stream) => superseded.push(stream),
  });
  const stream: LiveStream = {
    events: { offer: () => undefined, end: () => undefined },
    city: "london",
    openedAtMs: 1_000,
    generation: 0,
    announced: Promise.resolve(),
    highestSeen: 0,
    lastOfferSeq: 0,
    ended: false,
  };
  try {
    const rechecked = settle(riderId, stream, "recheck");
    stream.ended = true; // released while the script is out
    await rechecked;
    // A later message on the channel arrives after any announcement the recheck made.
    await connection.client.publish(keys.riderInbox(riderId), "marker");
    await waitUntil(() => heard.includes("marker"), 4_000, "the marker");
    expect([heard, superseded.length]).toEqual([["marker"], 0]);
    expect(await connection.client.get(keys.riderStream(riderId))).toBe("1");
  } finally {
    listener.disconnect();
  }
});
