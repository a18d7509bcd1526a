import { describe, expect, test } from "bun:test";
import type { Cluster } from "ioredis";
import { SOME_POSITION } from "../../test/support/positions";
import { useScriptConnections } from "../../test/support/script-connections";
import { uniqueId } from "../../test/support/tokens";
import { keys } from "./keys";
import { holdLease } from "./leases";
import {
  type PositionEntry,
  pruneStaleRiders,
  queueRecordPositions,
  takeRateLimit,
} from "./scripts";

const connections = useScriptConnections();

describe.each(["standalone", "cluster"] as const)("prune-stale-riders.lua on %s", (mode) => {
  test("removes riders last seen at or before the cutoff from both sets, in batches", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    const now = 1_000_000;
    for (let i = 0; i < 25; i++) {
      const rider = `r${i}`;
      // Riders 0-19 were last seen long ago, 20-24 just now.
      const seen = i < 20 ? now - 600_000 : now;
      await client.geoadd(keys.cityRiders(city), -0.12, 51.5, rider);
      await client.zadd(keys.cityRidersSeen(city), seen, rider);
    }
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(15);
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(5);
    expect(await pruneStaleRiders(client, city, now - 300_000, 15)).toBe(0);
    expect((await client.zrange(keys.cityRiders(city), "0", "-1")).sort()).toEqual([
      "r20",
      "r21",
      "r22",
      "r23",
      "r24",
    ]);
    expect(await client.zcard(keys.cityRidersSeen(city))).toBe(5);
  });

  test("still works after Redis forgets the script (EVALSHA falls back to EVAL)", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const city = uniqueId("city").toLowerCase();
    await connection.client.zadd(keys.cityRidersSeen(city), 1, "old");
    await connection.client.geoadd(keys.cityRiders(city), "0", "0", "old");
    if (mode === "standalone") await connection.client.script("FLUSH");
    else
      await Promise.all(
        (connection.client as Cluster).nodes("master").map((node) => node.script("FLUSH")),
      );
    expect(await pruneStaleRiders(connection.client, city, 10, 100)).toBe(1);
  });
});

describe.each(["standalone", "cluster"] as const)("record-positions.lua on %s", (mode) => {
  test("records current pings in the geo and seen sets, logs every ping in order, and chunks big batches", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    // 1,000 pings of 900 riders (the last 100 riders ping twice): more values than one unpack() takes.
    const entries: PositionEntry[] = Array.from({ length: 1_000 }, (_, i) => ({
      position: {
        ...SOME_POSITION,
        riderId: `r${i % 900}`,
        lng: -0.12 + (i % 900) * 0.0001,
        lat: 51.5 + i * 0.00001,
        receivedAtMs: 1_000 + i,
      },
      current: i % 10 !== 0,
      record: new Uint8Array([i % 256, 7]),
    }));
    const pipeline = client.pipeline();
    queueRecordPositions(pipeline, city, entries, 10_000);
    const [[error, recorded] = []] = (await pipeline.exec()) ?? [];
    expect(error).toBeNull();
    expect(recorded).toBe(1_000);

    const current = entries.filter((e) => e.current);
    expect(await client.zcard(keys.cityRiders(city))).toBe(
      new Set(current.map((e) => e.position.riderId)).size,
    );
    // A rider pinging twice keeps the later position and last-seen time.
    const last = current.filter((e) => e.position.riderId === "r51").at(-1)?.position;
    expect(Number(await client.zscore(keys.cityRidersSeen(city), "r51"))).toBe(
      last?.receivedAtMs ?? -1,
    );
    const [position] = await client.geopos(keys.cityRiders(city), "r51");
    expect(Number(position?.[1])).toBeCloseTo(last?.lat ?? 0, 5);
    // Backlog-only pings are logged but never placed on the map.
    expect(await client.zscore(keys.cityRidersSeen(city), "r0")).toBeNull();

    const log = await client.xrangeBuffer(keys.locationLog(city), "-", "+");
    expect(log).toHaveLength(1_000);
    expect(log.map(([, fields]) => fields[1]?.toString())).toEqual(
      entries.map((e) => e.position.riderId),
    );
    expect(log[3]?.[1][3]).toEqual(Buffer.from([3, 7]));
  });

  test("the log is capped at about MAXLEN: whole stream nodes beyond it go, the newest entries stay", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    const maxLen = 150;
    // Five calls of 100 pings: the cap holds across calls, not only within one.
    for (let call = 0; call < 5; call++) {
      const entries: PositionEntry[] = Array.from({ length: 100 }, (_, i) => ({
        position: { ...SOME_POSITION, riderId: `r${call * 100 + i}` },
        current: true,
        record: new Uint8Array([call, i]),
      }));
      const pipeline = client.pipeline();
      queueRecordPositions(pipeline, city, entries, maxLen);
      await pipeline.exec();
    }
    const length = await client.xlen(keys.locationLog(city));
    // `~` trims whole nodes (stream-node-max-entries, 100 by default): never below the cap.
    expect(length).toBeGreaterThanOrEqual(maxLen);
    expect(length).toBeLessThan(maxLen + 100);
    const [[, newest] = ["", []]] = await client.xrevrangeBuffer(
      keys.locationLog(city),
      "+",
      "-",
      "COUNT",
      1,
    );
    expect(newest[1]?.toString()).toBe("r499");
  });

  test("each ping arrives whole through the packed argument: id, exact times and coordinates, record bytes", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city").toLowerCase();
    // A multi-byte id, today's epoch ms, a long record holding every byte value, an empty one.
    const entries: PositionEntry[] = [
      { id: "rïder-ü", record: Uint8Array.from({ length: 600 }, (_, i) => i % 256) },
      { id: "r2", record: new Uint8Array(0) },
    ].map(({ id, record }, i) => ({
      position: {
        ...SOME_POSITION,
        riderId: id,
        lng: -0.123456789012 + i,
        lat: 51.987654321098,
        receivedAtMs: 1_764_662_400_123 + i,
      },
      current: true,
      record,
    }));
    const pipeline = client.pipeline();
    queueRecordPositions(pipeline, city, entries, 10_000);
    const [[error, recorded] = []] = (await pipeline.exec()) ?? [];
    expect(error).toBeNull();
    expect(recorded).toBe(2);
    expect(await client.zscore(keys.cityRidersSeen(city), "rïder-ü")).toBe("1764662400123");
    expect(await client.zscore(keys.cityRidersSeen(city), "r2")).toBe("1764662400124");
    const [position] = await client.geopos(keys.cityRiders(city), "rïder-ü");
    // The geo set keeps 52-bit geohashes: about 1e-6 degrees.
    expect(Number(position?.[0])).toBeCloseTo(-0.123456789012, 5);
    expect(Number(position?.[1])).toBeCloseTo(51.987654321098, 5);
    const log = await client.xrangeBuffer(keys.locationLog(city), "-", "+");
    expect(log.map(([, fields]) => fields[1]?.toString())).toEqual(["rïder-ü", "r2"]);
    expect(log[0]?.[1][3]).toEqual(Buffer.from(entries[0]?.record ?? []));
    expect(log[1]?.[1][3]).toEqual(Buffer.alloc(0));
  });

  test("with the log elsewhere (MAXLEN 0) nothing is written to the stream", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const city = uniqueId("city").toLowerCase();
    const pipeline = connection.client.pipeline();
    const entry = {
      position: { ...SOME_POSITION, riderId: "r1", lng: 2.35, lat: 48.85, receivedAtMs: 5 },
      current: true,
      record: new Uint8Array([1]),
    };
    queueRecordPositions(pipeline, city, [entry], 0);
    await pipeline.exec();
    expect(await connection.client.exists(keys.locationLog(city))).toBe(0);
    expect(await connection.client.zscore(keys.cityRidersSeen(city), "r1")).toBe("5");
  });
});

describe.each(["standalone", "cluster"] as const)("take-rate-limit.lua on %s", (mode) => {
  test("allows `limit` requests per window under concurrency, then refuses until the next window", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const identity = uniqueId("caller");
    const now = 1_800_000_000_000;
    const decisions = await Promise.all(
      Array.from({ length: 50 }, () => takeRateLimit(connection.client, identity, 20, 60_000, now)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    expect(Math.min(...decisions.map((d) => d.remaining))).toBe(0);
    expect(decisions[0]?.resetAtMs).toBe(now - (now % 60_000) + 60_000);
    const nextWindow = await takeRateLimit(connection.client, identity, 20, 60_000, now + 60_000);
    expect(nextWindow).toMatchObject({ allowed: true, remaining: 19 });
  });
});

describe.each(["standalone", "cluster"] as const)("location spill scripts on %s", (mode) => {
  test("spill-locations refuses past the cap; ack-spilled-locations deletes only for the lease holder", async () => {
    const connection = connections[mode];
    if (!connection) throw new Error("no connection");
    const { client } = connection;
    const city = uniqueId("city");
    const [spill, lease] = [keys.locationSpill(city), keys.locationSpillLease(city)];
    const record = (n: number) => [`r${n}`, String(1_000 + n), Buffer.from([0, n, 255])];
    expect(Number(await client.spillLocations(spill, 3, ...record(1), ...record(2)))).toBe(2);
    // One more fits under the cap of 3; the rest is refused, not trimmed.
    expect(Number(await client.spillLocations(spill, 3, ...record(3), ...record(4)))).toBe(1);
    const entries = await client.xrangeBuffer(spill, "-", "+");
    expect(entries.map(([, fields]) => fields[1]?.toString())).toEqual(["r1", "r2", "r3"]);
    expect(entries[0]?.[1][5]).toEqual(Buffer.from([0, 1, 255]));
    const ids = entries.map(([id]) => id.toString());

    expect(await holdLease(client, lease, "n1", 10_000)).toBe("taken");
    expect(Number(await client.ackSpilledLocations(lease, spill, "n2", ...ids))).toBe(-1);
    expect(await client.xlen(spill)).toBe(3);
    expect(Number(await client.ackSpilledLocations(lease, spill, "n1", ...ids.slice(0, 2)))).toBe(
      2,
    );
    expect(await client.xlen(spill)).toBe(1);
    await client.del(spill, lease);
  });
});
