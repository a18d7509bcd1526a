import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Redis } from "ioredis";
import { keys, ORDER_PARTITIONS } from "../../core/redis/keys";
import { ENTRY_HEADER, ORDER_EVENTS_TOPIC } from "../../gateway/outbox-relay";
import { freePort } from "../../test/support/free-port";
import {
  type KafkaBroker,
  type ProducedRecord,
  startKafkaBroker,
} from "../../test/support/kafka-broker";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { lineReader, spawnBun, waitForOk } from "../support/child";
import { Reservoir } from "../support/percentiles";
import { cpuMeter } from "../support/process-stats";
import { seedBenchOrders } from "../support/seed-orders";

export interface OutboxBenchOptions {
  seconds: number;
  /** Status changes per second during the lag run. */
  rate: number;
  /** Unrelated keys in Redis for the second run (the first has none). */
  unrelatedKeys: number;
  /** Changes waiting before the relay starts, for the drain (throughput) run. */
  backlog: number;
  /** Rounds at `rate` per keyspace, alternating between the two. */
  rounds: number;
  progress: (line: string) => void;
}

export interface OutboxRun {
  unrelatedKeys: number;
  /** One full `SCAN MATCH outbox:*` of the keyspace: what every pass of the old relay cost. */
  fullScanMs: number;
  /** Entries per second draining each round's backlog (leases held → last record stored). */
  roundDrainPerSecond: number[];
  /** Entry written (its stream id) → stored by the broker, at `rate`, every round together. */
  lagMs: { p50: number; p99: number; max: number };
  /** lag p99 of each round at `rate` (the rounds alternate with the other keyspace's). */
  roundP99Ms: number[];
  relayed: number;
  changes: number;
  /** Share of one core during the rounds at `rate`. */
  cpu: Record<string, number>;
}

export interface OutboxBenchResult {
  options: Omit<OutboxBenchOptions, "progress">;
  relayEveryMs: number;
  runs: OutboxRun[];
}

const ROOT = join(import.meta.dir, "..", "..");
const RELAY_EVERY_MS = 100;
const backlogPrefix = (round: number) => `bench-backlog-${round}-`;
const steadyPrefix = (round: number) => `bench-steady-${round}-`;

/**
 * The outbox relay against Redis with no other keys and against Redis with
 * `unrelatedKeys` (riders' positions, say), side by side in one run: each
 * keyspace has its own redis-server, Kafka wire fixture and real gateway
 * process relaying; status changes come from a load process running the
 * status script. A backlog measures how fast one gateway drains; rounds at
 * `rate`, alternating between the two keyspaces so that load from elsewhere
 * on the machine hits both alike, measure the lag from entry to broker.
 */
export async function runOutboxRelayBench(options: OutboxBenchOptions): Promise<OutboxBenchResult> {
  const { progress, ...rest } = options;
  const rigs: Rig[] = [];
  try {
    for (const unrelatedKeys of [0, options.unrelatedKeys])
      rigs.push(await startRig(options, unrelatedKeys));
    // A B, B A, A B...: whichever runs first in a round gets no systematic edge.
    for (let round = 0; round < options.rounds; round++)
      for (const rig of round % 2 === 0 ? rigs : [...rigs].reverse())
        await runRound(rig, options, round);
    return { options: rest, relayEveryMs: RELAY_EVERY_MS, runs: rigs.map(summary) };
  } finally {
    for (const rig of rigs) await stopRig(rig);
  }
}

interface Rig {
  unrelatedKeys: number;
  redis: RedisServer;
  broker: KafkaBroker;
  db: Redis;
  gateway?: ReturnType<typeof spawnBun>;
  fullScanMs: number;
  roundDrainPerSecond: number[];
  changes: number;
  roundP99Ms: number[];
  cpuSeconds: Record<string, number>;
  steadySeconds: number;
}

async function seedUnrelatedKeys(db: Redis, count: number): Promise<void> {
  const chunk = 10_000;
  const value = JSON.stringify({ lat: 51.5074, lng: -0.1278, seq: 1, recordedAt: Date.now() });
  for (let from = 0; from < count; from += chunk) {
    const pairs: string[] = [];
    for (let i = from; i < Math.min(count, from + chunk); i++)
      pairs.push(`rider:{bench-r${i}}:pos`, value);
    await db.mset(...pairs);
  }
}

/** The fastest of three full scans (the first pays for connection warm-up). */
async function fullScanMs(db: Redis): Promise<number> {
  let fastest = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const startedAt = performance.now();
    let cursor = "0";
    do {
      [cursor] = await db.scan(cursor, "MATCH", "outbox:*", "COUNT", 1_000);
    } while (cursor !== "0");
    fastest = Math.min(fastest, performance.now() - startedAt);
  }
  return fastest;
}

async function runLoad(url: string, prefix: string, count: number, rate: number) {
  const child = spawnBun(join(import.meta.dir, "..", "support", "load-status-changes.ts"), [
    ...["--redis", url, "--prefix", prefix, "--count", String(count), "--rate", String(rate)],
  ]);
  return JSON.parse(await lineReader(child).until((line) => line.startsWith("{"))) as {
    changes: number;
  };
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("outbox bench: timed out");
    await Bun.sleep(10);
  }
}

const recordsOf = (broker: KafkaBroker, prefix: string) =>
  broker.records.filter(
    (r) => r.topic === ORDER_EVENTS_TOPIC && r.key?.toString().startsWith(prefix),
  );

/**
 * Waits until `count` records with `prefix` have arrived, looking only at the
 * records that came since the last look: the broker shares this process, and
 * filtering every record again each time would slow it down as they pile up.
 */
async function waitForRecords(
  broker: KafkaBroker,
  prefix: string,
  count: number,
  timeoutMs: number,
) {
  let seen = 0;
  let matched = 0;
  await waitFor(() => {
    for (; seen < broker.records.length; seen++)
      if (broker.records[seen]?.key?.toString().startsWith(prefix)) matched += 1;
    return matched >= count;
  }, timeoutMs);
}

async function startRig(options: OutboxBenchOptions, unrelatedKeys: number): Promise<Rig> {
  const { seconds, rate, backlog, progress } = options;
  const [redis, broker] = await Promise.all([startRedis(), startKafkaBroker()]);
  const db = new Redis(redis.url);
  const rig: Rig = {
    unrelatedKeys,
    redis,
    broker,
    db,
    fullScanMs: 0,
    roundDrainPerSecond: [],
    changes: 0,
    roundP99Ms: [],
    cpuSeconds: {},
    steadySeconds: 0,
  };
  await seedUnrelatedKeys(db, unrelatedKeys);
  rig.fullScanMs = await fullScanMs(db);
  progress(
    `outbox: ${unrelatedKeys} unrelated keys; one full SCAN ${rig.fullScanMs.toFixed(0)} ms`,
  );
  const seed = (orderPrefix: string, count: number) =>
    seedBenchOrders(redis.url, count, { orderPrefix, riderPrefix: `${orderPrefix}rider-` });
  for (let round = 0; round < options.rounds; round++) {
    await seed(backlogPrefix(round), backlog);
    await seed(steadyPrefix(round), rate * seconds);
  }
  return rig;
}

/**
 * One round on one keyspace: with no relay running a backlog is written,
 * a gateway starts and drains it, then changes come at `rate`; the gateway
 * drains (SIGTERM) at the end, giving its leases back.
 */
async function runRound(rig: Rig, options: OutboxBenchOptions, round: number): Promise<void> {
  await runLoad(rig.redis.url, backlogPrefix(round), options.backlog, 0);
  await drainBacklog(rig, options, round);
  await steadyRound(rig, options, round);
  rig.gateway?.kill("SIGTERM");
  await rig.gateway?.exited;
}

async function drainBacklog(rig: Rig, options: OutboxBenchOptions, round: number): Promise<void> {
  const port = await freePort();
  rig.gateway = spawnBun(join(ROOT, "gateway", "main.ts"), [], {
    REDIS_URL: rig.redis.url,
    KAFKA_BROKERS: rig.broker.brokers,
    JWT_SECRET: randomBytes(32).toString("hex"),
    GATEWAY_PORT: String(port),
    GATEWAY_NODE_ID: "bench-gateway",
    OUTBOX_RELAY_EVERY_MS: String(RELAY_EVERY_MS),
    LOG_LEVEL: "silent",
  });
  await waitForOk(`http://127.0.0.1:${port}/readyz`);
  const leases = Array.from({ length: ORDER_PARTITIONS }, (_, p) => keys.outboxLease(p));
  await waitFor(async () => (await rig.db.mget(...leases)).every((h) => h !== null), 15_000);
  const leasedAt = Date.now();
  const prefix = backlogPrefix(round);
  await waitForRecords(rig.broker, prefix, options.backlog, 120_000);
  const drained = recordsOf(rig.broker, prefix);
  const drainMs = Math.max(...drained.map((r) => r.storedAtMs)) - leasedAt;
  const perSecond = (drained.length / drainMs) * 1000;
  rig.roundDrainPerSecond.push(perSecond);
  options.progress(
    `  ${rig.unrelatedKeys} keys, round ${round + 1}: backlog of ${options.backlog} drained at ${perSecond.toFixed(0)} entries/s`,
  );
}

/** Entry written (the ms of its stream id, Redis's clock) → stored by the broker (this process's clock). */
function lagMs(record: ProducedRecord): number {
  const entry = record.headers[ENTRY_HEADER]?.toString() ?? "";
  return record.storedAtMs - Number(entry.slice(entry.indexOf("/") + 1, entry.indexOf("-")));
}

async function steadyRound(rig: Rig, options: OutboxBenchOptions, round: number): Promise<void> {
  const { gateway } = rig;
  if (!gateway) throw new Error("outbox bench: no gateway");
  const prefix = steadyPrefix(round);
  const meter = cpuMeter({ gateway: gateway.pid, redis: rig.redis.pid });
  const startedAt = performance.now();
  const { changes } = await runLoad(
    rig.redis.url,
    prefix,
    options.rate * options.seconds,
    options.rate,
  );
  await waitForRecords(rig.broker, prefix, changes, 30_000);
  const cpu = meter.stop();
  const seconds = (performance.now() - startedAt) / 1000;
  for (const [name, share] of Object.entries(cpu))
    rig.cpuSeconds[name] = (rig.cpuSeconds[name] ?? 0) + share * seconds;
  rig.steadySeconds += seconds;
  rig.changes += changes;
  const lags = new Reservoir();
  for (const record of recordsOf(rig.broker, prefix)) lags.add(lagMs(record));
  rig.roundP99Ms.push(lags.percentile(99));
  options.progress(
    `  ${rig.unrelatedKeys} keys, round ${round + 1} at ${options.rate}/s: lag p50 ${lags.percentile(50)} ms, p99 ${lags.percentile(99)} ms`,
  );
}

function summary(rig: Rig): OutboxRun {
  const steady = rig.broker.records.filter((r) => r.key?.toString().startsWith("bench-steady-"));
  const lags = new Reservoir();
  for (const record of steady) lags.add(lagMs(record));
  return {
    unrelatedKeys: rig.unrelatedKeys,
    fullScanMs: rig.fullScanMs,
    roundDrainPerSecond: rig.roundDrainPerSecond,
    lagMs: {
      p50: lags.percentile(50),
      p99: lags.percentile(99),
      max: Math.max(...steady.map(lagMs)),
    },
    roundP99Ms: rig.roundP99Ms,
    relayed: steady.length,
    changes: rig.changes,
    cpu: Object.fromEntries(
      Object.entries(rig.cpuSeconds).map(([name, cpuSeconds]) => [
        name,
        cpuSeconds / rig.steadySeconds,
      ]),
    ),
  };
}

async function stopRig(rig: Rig): Promise<void> {
  rig.gateway?.kill("SIGKILL");
  await rig.gateway?.exited;
  rig.db.disconnect();
  await rig.broker.stop();
  await rig.redis.stop();
}
