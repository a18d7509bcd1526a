import { expect, test } from "bun:test";
import pino from "pino";
import { Counter, Histogram, Registry } from "prom-client";
import { startFreezingProxy } from "../../test/support/freezing-proxy";
import { useRedisConnection } from "../../test/support/redis-connection";
import { waitUntil } from "../../test/support/wait";
import { settleWithin } from "../lifecycle/settle-within";
import { connectRedis } from "../redis/client";
import { keys } from "../redis/keys";
import {
  metricTotal,
  NODE_STATS_STALE_MS,
  ratePerSecond,
  readNodeStats,
  startNodeStatsReporter,
  windowedQuantile,
} from "./node-stats";

const fixture = useRedisConnection("node-stats-test");
const logger = pino({ level: "silent" });

/** A tracking node's reporter, every 20 ms, on the shared connection unless told otherwise. */
function startTrackingReporter(
  nodeId: string,
  figures: () => Promise<Record<string, number>>,
  connection = fixture.connection,
) {
  return startNodeStatsReporter({
    connection,
    tier: "tracking",
    nodeId,
    everyMs: 20,
    logger,
    figures,
  });
}

test("a node's figures reach Redis on each report and leave it when the node stops", async () => {
  let sockets = 3;
  const reporter = startTrackingReporter("t-report", async () => ({ sockets }));
  await waitUntil(async () => (await readNodeStats(fixture.connection)).length === 1);
  sockets = 7;
  await waitUntil(async () => {
    const [stats] = await readNodeStats(fixture.connection);
    return stats?.figures.sockets === 7;
  });
  const [stats] = await readNodeStats(fixture.connection);
  expect(stats).toMatchObject({ tier: "tracking", nodeId: "t-report" });
  await reporter.stop();
  expect(await readNodeStats(fixture.connection)).toEqual([]);
});

test("a node that lost its id to another stops reporting and leaves the entry to the id's new holder", async () => {
  let reports = 0;
  const reporter = startTrackingReporter("t-taken", async () => ({ sockets: ++reports }));
  await waitUntil(async () => (await readNodeStats(fixture.connection)).length === 1);
  await reporter.stop({ forget: false });
  const [left] = await readNodeStats(fixture.connection);
  expect(left).toMatchObject({ tier: "tracking", nodeId: "t-taken" });
  // No report after the stop, while a reporter beside it makes several (its reports mark
  // time passing on this event loop, however loaded the machine).
  const reportsAtStop = reports;
  let besideReports = 0;
  const beside = startTrackingReporter("t-beside", async () => ({ sockets: ++besideReports }));
  await waitUntil(() => besideReports >= 5, 5_000, "five reports beside the stopped one");
  await beside.stop();
  expect(reports).toBe(reportsAtStop);
  expect(await readNodeStats(fixture.connection)).toEqual([left as never]);
  await fixture.connection.client.hdel(keys.nodeStats(), "tracking:t-taken");
});

test("a stop while Redis hangs with a report in flight still ends (within its 1 s wait)", async () => {
  const proxy = await startFreezingProxy(fixture.redis.port);
  const connection = await connectRedis(
    { mode: "standalone", url: `redis://127.0.0.1:${proxy.port}` },
    "node-stats-frozen",
    logger,
  );
  let reports = 0;
  const reporter = startTrackingReporter(
    "t-frozen",
    async () => ({ sockets: ++reports }),
    connection,
  );
  try {
    await waitUntil(async () => (await readNodeStats(fixture.connection)).length === 1);
    proxy.freeze();
    // The next report goes out and never comes back.
    const frozenAt = reports;
    await waitUntil(() => reports > frozenAt, 5_000, "a report sent to the frozen Redis");
    const stopped = await settleWithin(
      reporter.stop().then(() => "stopped"),
      5_000,
      "hung",
    );
    expect(stopped).toBe("stopped");
  } finally {
    await proxy.close();
    connection.client.disconnect();
    await fixture.connection.client.del(keys.nodeStats());
  }
});

test("entries of nodes gone silent and malformed entries are ignored and removed", async () => {
  const { client } = fixture.connection;
  const now = Date.now();
  const entry = (nodeId: string, at: number) =>
    JSON.stringify({ tier: "ingest", nodeId, at, figures: { pingsPerSecond: 1 } });
  await client.hset(keys.nodeStats(), {
    "ingest:live": entry("live", now - 1_000),
    "ingest:gone": entry("gone", now - NODE_STATS_STALE_MS - 1),
    "ingest:junk": "{not json",
  });
  const live = await readNodeStats(fixture.connection, now);
  expect(live.map((stats) => stats.nodeId)).toEqual(["live"]);
  expect((await client.hkeys(keys.nodeStats())).sort()).toEqual(["ingest:live"]);
  await client.del(keys.nodeStats());
});

test("a counter's rate is its growth per second between two reads", async () => {
  const counter = new Counter({ name: "c", help: "c", labelNames: ["kind"], registers: [] });
  let clock = 1_000;
  const rate = ratePerSecond(
    () => metricTotal(counter),
    () => clock,
  );
  expect(await rate()).toBe(0);
  counter.inc({ kind: "a" }, 30);
  counter.inc({ kind: "b" }, 10);
  clock += 2_000;
  expect(await rate()).toBe(20);
});

test("the windowed quantile covers only what was observed since the last read", async () => {
  const registry = new Registry();
  const histogram = new Histogram({
    name: "h",
    help: "h",
    buckets: [0.001, 0.01, 0.1, 1],
    registers: [registry],
  });
  const p99 = windowedQuantile(histogram, 0.99);
  expect(await p99()).toBeUndefined();
  for (let i = 0; i < 99; i++) histogram.observe(0.0005);
  histogram.observe(0.5);
  // 99 of 100 are in the first bucket.
  expect(await p99()).toBe(0.001);
  for (let i = 0; i < 10; i++) histogram.observe(0.05);
  // The earlier fast observations are outside this window.
  expect(await p99()).toBe(0.1);
  histogram.observe(30);
  // Past the last bucket, the last finite bound stands for "at least".
  expect(await p99()).toBe(1);
});
