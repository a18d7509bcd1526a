import { expect, test } from "bun:test";
import pino from "pino";
import { createMetricsRegistry } from "../core/observability/metrics";
import { keys } from "../core/redis/keys";
import { useRedisConnection } from "../test/support/redis-connection";
import { uniqueId } from "../test/support/tokens";
import { createIngestMetrics } from "./metrics";
import { startStaleRiderSweeper } from "./stale-rider-sweeper";

const fixture = useRedisConnection("sweeper-test");
const logger = pino({ level: "silent" });

test("a sweep removes riders not seen for the stale time from every registered city, and counts them", async () => {
  const now = 10_000_000;
  const [london, paris] = [uniqueId("london").toLowerCase(), uniqueId("paris").toLowerCase()];
  const { client } = fixture.connection;
  await client.sadd(keys.cities(), london, paris);
  for (const [city, rider, seen] of [
    [london, "gone", now - 400_000],
    [london, "here", now - 1_000],
    [paris, "gone-too", now - 300_001],
  ] as const) {
    await client.geoadd(keys.cityRiders(city), "2.35", "48.85", rider);
    await client.zadd(keys.cityRidersSeen(city), seen, rider);
  }
  const metrics = createIngestMetrics(createMetricsRegistry("ingest"));
  const sweeper = startStaleRiderSweeper({
    connection: fixture.connection,
    localCities: () => [],
    staleMs: 300_000,
    everyMs: 60_000,
    metrics,
    logger,
    now: () => now,
  });
  try {
    expect(await sweeper.sweepOnce()).toBe(2);
  } finally {
    sweeper.stop();
  }
  expect(await client.zrange(keys.cityRiders(london), "0", "-1")).toEqual(["here"]);
  expect(await client.zcard(keys.cityRiders(paris))).toBe(0);
  expect((await metrics.ridersPruned.get()).values[0]?.value).toBe(2);
});

test("a sweep puts this node's cities back into geo:cities (Redis lost them) and sweeps them", async () => {
  const now = 10_000_000;
  const city = uniqueId("berlin").toLowerCase();
  const { client } = fixture.connection;
  await client.geoadd(keys.cityRiders(city), "13.4", "52.5", "gone");
  await client.zadd(keys.cityRidersSeen(city), now - 400_000, "gone");
  expect(await client.sismember(keys.cities(), city)).toBe(0);
  const sweeper = startStaleRiderSweeper({
    connection: fixture.connection,
    localCities: () => [city],
    staleMs: 300_000,
    everyMs: 60_000,
    metrics: createIngestMetrics(createMetricsRegistry("ingest")),
    logger,
    now: () => now,
  });
  try {
    expect(await sweeper.sweepOnce()).toBe(1);
  } finally {
    sweeper.stop();
  }
  expect(await client.sismember(keys.cities(), city)).toBe(1);
  expect(await client.zcard(keys.cityRiders(city))).toBe(0);
});
