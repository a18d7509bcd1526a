import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ingestDrainTimeoutMs, loadIngestConfig } from "./config";
import { readOpenFileLimit } from "./open-file-limit";

const BASE = { REDIS_URL: "redis://127.0.0.1:6379", JWT_SECRET: "x".repeat(32) };

describe("transport limits", () => {
  test("the connection cap defaults to half the open-file limit, at most 10,000", () => {
    const cap = (openFileLimit?: number) =>
      loadIngestConfig(BASE, { openFileLimit }).transport.maxConnections;
    expect(cap(1_024)).toBe(512);
    expect(cap(1_048_576)).toBe(10_000);
    expect(cap(undefined)).toBe(10_000);
  });

  test("a cap that leaves too few file descriptors stops the start, naming the variable", () => {
    const load = (value: string) =>
      loadIngestConfig({ ...BASE, INGEST_MAX_CONNECTIONS: value }, { openFileLimit: 1_024 });
    expect(load("896").transport.maxConnections).toBe(896);
    expect(() => load("1000")).toThrow(
      /INGEST_MAX_CONNECTIONS: must leave 128 of the process's 1024 open files/,
    );
  });

  test("the HTTP/1.1 port's cap defaults to a sixteenth of the open-file limit (at most 1,000), three descriptors each", () => {
    const cap = (openFileLimit?: number, env: Record<string, string> = {}) =>
      loadIngestConfig({ ...BASE, ...env }, { openFileLimit }).transport.httpMaxConnections;
    expect(cap(1_024)).toBe(64);
    expect(cap(1_048_576)).toBe(1_000);
    expect(cap(undefined)).toBe(1_000);
  });

  test("the two ports' caps together leave 128 descriptors: an HTTP/1.1 cap past what the h2c cap leaves stops the start", () => {
    const cap = (env: Record<string, string>) =>
      loadIngestConfig({ ...BASE, ...env }, { openFileLimit: 1_024 }).transport.httpMaxConnections;
    // 1,024 - 512 (h2c) - 128 leaves 384 descriptors: 128 connections of three.
    expect(cap({ INGEST_HTTP_MAX_CONNECTIONS: "128" })).toBe(128);
    expect(() => cap({ INGEST_HTTP_MAX_CONNECTIONS: "129" })).toThrow(
      /INGEST_HTTP_MAX_CONNECTIONS: at 3 open files per connection, must leave 128 of the process's 1024 \(ulimit -n\) beside the h2c port's 512/,
    );
    // A large h2c cap shrinks the default, never below one.
    expect(cap({ INGEST_MAX_CONNECTIONS: "800" })).toBe(32);
    expect(cap({ INGEST_MAX_CONNECTIONS: "896" })).toBe(1);
    expect(() => cap({ INGEST_MAX_CONNECTIONS: "800", INGEST_HTTP_MAX_CONNECTIONS: "64" })).toThrow(
      /INGEST_HTTP_MAX_CONNECTIONS/,
    );
  });

  test("each limit is an integer in its range", () => {
    const load = (env: Record<string, string>) => loadIngestConfig({ ...BASE, ...env });
    expect(load({}).transport).toMatchObject({
      maxStreamsPerConnection: 4,
      maxCallsPerRider: 2,
      prefaceTimeoutMs: 5_000,
      idleTimeoutMs: 30_000,
      keepaliveMs: 30_000,
      keepaliveTimeoutMs: 10_000,
      messageTimeoutMs: 10_000,
      httpIdleTimeoutS: 10,
      httpHeadTimeoutMs: 8_000,
      httpMaxHeaderBytes: 8_192,
    });
    expect(() => load({ INGEST_IDLE_TIMEOUT_MS: "30s" })).toThrow(/INGEST_IDLE_TIMEOUT_MS/);
    expect(() => load({ INGEST_MAX_STREAMS_PER_CONNECTION: "0" })).toThrow(
      /INGEST_MAX_STREAMS_PER_CONNECTION: must be between 1/,
    );
    expect(() => load({ INGEST_HTTP_IDLE_TIMEOUT_S: "300" })).toThrow(/between 1 and 255/);
    // Past Bun's own first-request deadline behind the front (10-14 s) it could not fire.
    expect(() => load({ INGEST_HTTP_HEAD_TIMEOUT_MS: "8001" })).toThrow(/between 50 and 8000/);
    // Above the parser's own limit the setting could never fire.
    expect(() => load({ INGEST_HTTP_MAX_HEADER_BYTES: "70000" })).toThrow(/between 1024 and 65536/);
  });
});

describe("ping intervals (sent as PingAck.next_interval_ms)", () => {
  const load = (env: Record<string, string>) => loadIngestConfig({ ...BASE, ...env }).interval;

  test("0 stops the start: proto3 sends it as unset, and apps would use their own default", () => {
    expect(() => load({ PING_INTERVAL_TURN_MS: "0" })).toThrow(
      /^PING_INTERVAL_TURN_MS: must be between 1 and 4294967295 \(got "0"\)$/,
    );
    expect(load({ PING_INTERVAL_TURN_MS: "1" }).turnMs).toBe(1);
  });

  test("each interval ends 10 s before RIDER_STALE_MS, so a rider whose ping comes late is not swept out", () => {
    expect(load({})).toMatchObject({
      parkedMs: 30_000,
      movingMs: 4_000,
      turnMs: 1_000,
      nearStopMs: 2_000,
    });
    const fields = {
      PARKED: "parkedMs",
      MOVING: "movingMs",
      TURN: "turnMs",
      NEAR_STOP: "nearStopMs",
    };
    for (const [name, field] of Object.entries(fields)) {
      const variable = `PING_INTERVAL_${name}_MS`;
      expect(load({ [variable]: "290000" })).toMatchObject({ [field]: 290_000 });
      // 299,999 with the 300 s window: a ping 1 ms late, or a 10 s locate(), and the rider is gone.
      expect(() => load({ [variable]: "290001" })).toThrow(
        new RegExp(`^${variable}: must be at most RIDER_STALE_MS \\(300000\\) - 10000`),
      );
      expect(() => load({ [variable]: "299999" })).toThrow(variable);
      expect(() => load({ [variable]: "0" })).toThrow(variable);
    }
    // A shorter RIDER_STALE_MS than the default parked interval must come with a shorter one.
    expect(() => load({ RIDER_STALE_MS: "35000" })).toThrow(/^PING_INTERVAL_PARKED_MS/);
    expect(load({ RIDER_STALE_MS: "35000", PING_INTERVAL_PARKED_MS: "25000" }).parkedMs).toBe(
      25_000,
    );
  });
});

test("DRAIN_RECONNECT_MS is 1 to 60000: Reconnect.after_ms 0 is proto3's unset, which apps read as 'use your own backoff'", () => {
  const load = (env: Record<string, string>) =>
    loadIngestConfig({ ...BASE, ...env }).drainReconnectMs;
  expect(load({})).toBe(1_000);
  expect(() => load({ DRAIN_RECONNECT_MS: "0" })).toThrow(
    /^DRAIN_RECONNECT_MS: must be between 1 and 60000 \(got "0"\)$/,
  );
  expect(load({ DRAIN_RECONNECT_MS: "1" })).toBe(1);
  expect(load({ DRAIN_RECONNECT_MS: "60000" })).toBe(60_000);
  // Riders told to stay away longer than a minute are a gap on every customer's map.
  expect(() => load({ DRAIN_RECONNECT_MS: "60001" })).toThrow(/^DRAIN_RECONNECT_MS/);
});

test("the open-file limit is the soft 'Max open files' of /proc/self/limits", () => {
  const dir = mkdtempSync(join(tmpdir(), "limits-"));
  try {
    const file = join(dir, "limits");
    writeFileSync(
      file,
      "Limit                     Soft Limit           Hard Limit           Units\n" +
        "Max open files            1024                 524288               files\n",
    );
    expect(readOpenFileLimit(file)).toBe(1_024);
    writeFileSync(
      file,
      "Max open files            unlimited            unlimited            files\n",
    );
    expect(readOpenFileLimit(file)).toBeUndefined();
    expect(readOpenFileLimit(join(dir, "missing"))).toBeUndefined();
  } finally {
    rmSync(dir, { recursive: true });
  }
});

describe("the drain's cut", () => {
  const cut = (env: Record<string, string> = {}) =>
    ingestDrainTimeoutMs(loadIngestConfig({ ...BASE, ...env }));

  test("15 s alone; with Kafka, its worst case and 5 s: 22 s at the defaults, 27 s at a 10 s wait", () => {
    // The calls (2 s, the figures' 1 s alongside) + the flush (2 s) + QUIT (1 s) = 5 s: under 15 s.
    expect(cut()).toBe(15_000);
    // + the replay's stop (1 s), KAFKA_DRAIN_WAIT_MS (5 s), the spill (1 s + 1 s per 25,000 of
    // the 100,000 KAFKA_BUFFER_RECORDS: 5 s), the disconnect (1 s).
    expect(cut({ KAFKA_BROKERS: "127.0.0.1:9092" })).toBe(22_000);
    expect(cut({ KAFKA_BROKERS: "127.0.0.1:9092", KAFKA_DRAIN_WAIT_MS: "10000" })).toBe(27_000);
  });
});

test("the config loads no package (no Redis client, no kafkajs): computing the drain's cut stays cheap to import", async () => {
  const probe = Bun.spawn(
    [
      process.execPath,
      "-e",
      `await import(${JSON.stringify(join(import.meta.dir, "config.ts"))}); console.log(JSON.stringify(Object.keys(require.cache)))`,
    ],
    { stdout: "pipe" },
  );
  const loaded = JSON.parse(await new Response(probe.stdout).text()) as string[];
  expect(await probe.exited).toBe(0);
  expect(loaded).toContain(join(import.meta.dir, "config.ts"));
  expect(loaded.filter((path) => path.includes("/node_modules/"))).toEqual([]);
});

describe("the failed-auth limit's client address", () => {
  test("INGEST_CLIENT_ADDRESS_HEADER is opt-in, a header name (stored lower-case), anything else stops the start naming it", () => {
    expect(loadIngestConfig(BASE).clientAddressHeader).toBeUndefined();
    const header = loadIngestConfig({ ...BASE, INGEST_CLIENT_ADDRESS_HEADER: "X-Forwarded-For" });
    expect(header.clientAddressHeader).toBe("x-forwarded-for");
    expect(() => loadIngestConfig({ ...BASE, INGEST_CLIENT_ADDRESS_HEADER: "x: y" })).toThrow(
      /INGEST_CLIENT_ADDRESS_HEADER: must be a header name/,
    );
  });
});
