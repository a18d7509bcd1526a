import { expect, test } from "bun:test";
import pino from "pino";
import { Registry } from "prom-client";
import { keys } from "../../../core/redis/keys";
import { useRedisConnection } from "../../../test/support/redis-connection";
import { uniqueId } from "../../../test/support/tokens";
import { waitUntil } from "../../../test/support/wait";
import { createIngestMetrics } from "../../metrics";
import type { LocationEntry } from "./location-log";
import { startLocationReplay } from "./location-replay";

const fixture = useRedisConnection("location-replay-test");

/** A replayer whose Kafka answers only when the test says so; counts its passes and sends. */
function replayer(nodeId: string) {
  const sent: LocationEntry[][] = [];
  let passes = 0;
  let answer: () => void = () => {};
  const kafkaAnswered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  const replay = startLocationReplay({
    connection: fixture.connection,
    log: {
      produce: async (entries) => {
        sent.push([...entries]);
        await kafkaAnswered;
      },
    },
    // Told once per pass, by the count that starts it.
    spill: { mark: () => 0, counted: () => void passes++ },
    nodeId,
    leaseMs: 1_000,
    metrics: createIngestMetrics(new Registry()),
    logger: pino({ level: "silent" }),
  });
  return { replay, sent, answer, passes: () => passes };
}

test("two ingest processes given one INGEST_NODE_ID never replay a city's spill together", async () => {
  const { client } = fixture.connection;
  const city = uniqueId("city");
  await client.sadd(keys.cities(), city);
  for (let i = 0; i < 5; i++)
    await client.xadd(keys.locationSpill(city), "*", "rider", "r1", "at", String(i), "record", "x");

  const nodeId = uniqueId("ingest");
  const first = replayer(nodeId);
  await waitUntil(() => first.sent.length === 1, 5_000);
  // The first holds the city's lease and waits on Kafka; its twin counts the spill pass after pass.
  const twin = replayer(nodeId);
  await waitUntil(() => twin.passes() >= 3 || twin.sent.length > 0, 5_000);
  expect(twin.sent).toEqual([]);

  first.answer();
  twin.answer();
  await waitUntil(async () => (await client.xlen(keys.locationSpill(city))) === 0, 5_000);
  await Promise.all([first.replay.stop(), twin.replay.stop()]);
  // Every spilled record went to Kafka once.
  expect([...first.sent, ...twin.sent].flat().map((entry) => entry.recordedAtMs)).toEqual([
    0, 1, 2, 3, 4,
  ]);
  expect(await client.exists(keys.locationSpillLease(city))).toBe(0);
});
