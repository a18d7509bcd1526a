// record-positions.lua given an argument it cannot use: it must write nothing,
// since Redis keeps a script's writes made before it fails and the writer
// resends a failed flush (a half-written call would log pings twice).
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { ChainableCommander } from "ioredis";
import pino from "pino";
import { SOME_POSITION } from "../../test/support/positions";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { connectRedis, type RedisConnection } from "./client";
import { keys } from "./keys";
import { type PositionEntry, queueRecordPositions } from "./scripts";

let server: RedisServer;
let connection: RedisConnection;

beforeAll(async () => {
  server = await startRedis();
  connection = await connectRedis(
    { mode: "standalone", url: server.url },
    "test",
    pino({ level: "silent" }),
  );
});

afterAll(async () => {
  await connection?.close();
  await server?.stop();
});

function entry(riderId: string, lat: number): PositionEntry {
  return {
    position: { ...SOME_POSITION, riderId, lng: -0.12, lat, receivedAtMs: 1_000 },
    current: true,
    record: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
  };
}

/** The script's arguments as queueRecordPositions builds them (the packed pings last). */
function argumentsFor(entries: PositionEntry[]): { maxLen: number; packed: Buffer } {
  let args: unknown[] = [];
  const capture = { recordPositions: (...given: unknown[]) => (args = given) };
  queueRecordPositions(capture as unknown as ChainableCommander, "x", entries, 10_000);
  return { maxLen: args[3] as number, packed: args[4] as Buffer };
}

async function record(city: string, maxLen: number, packed: Buffer): Promise<unknown> {
  return connection.client.recordPositions(
    keys.cityRiders(city),
    keys.cityRidersSeen(city),
    keys.locationLog(city),
    maxLen,
    packed,
  );
}

async function written(city: string): Promise<number[]> {
  const { client } = connection;
  return Promise.all([
    client.xlen(keys.locationLog(city)),
    client.zcard(keys.cityRiders(city)),
    client.zcard(keys.cityRidersSeen(city)),
  ]);
}

test("a ping cut short, or bytes left over after the last, is refused before anything is written", async () => {
  const { maxLen, packed } = argumentsFor([entry("r1", 51.5), entry("r2", 51.6)]);
  const cases = {
    "second ping's record cut short": packed.subarray(0, packed.length - 3),
    "second ping cut in its fixed part": packed.subarray(0, packed.length - 20),
    "bytes left over": Buffer.concat([packed, Buffer.from([0, 0, 0, 9, 1])]),
  };
  for (const [name, bad] of Object.entries(cases)) {
    const city = uniqueId("city").toLowerCase();
    const error = await record(city, maxLen, bad).catch((e: Error) => e);
    expect(error, name).toBeInstanceOf(Error);
    expect(String(error), name).toContain("malformed pings argument");
    expect(await written(city), name).toEqual([0, 0, 0]);
  }
  // The same argument whole is recorded: the cases above fail on their bytes alone.
  const city = uniqueId("city").toLowerCase();
  expect(await record(city, maxLen, packed)).toBe(2);
  expect(await written(city)).toEqual([2, 2, 2]);
});

test("a current ping outside GEOADD's range after a good one is refused before anything is written", async () => {
  const city = uniqueId("city").toLowerCase();
  const { maxLen, packed } = argumentsFor([entry("r1", 51.5), entry("r2", 86)]);
  const error = await record(city, maxLen, packed).catch((e: Error) => e);
  expect(String(error)).toContain("malformed pings argument");
  expect(await written(city)).toEqual([0, 0, 0]);
});
