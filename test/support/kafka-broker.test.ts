import { afterAll, beforeAll, expect, test } from "bun:test";
import { Kafka, logLevel } from "kafkajs";
import { type KafkaBroker, startKafkaBroker } from "./kafka-broker";

let broker: KafkaBroker;

beforeAll(async () => {
  broker = await startKafkaBroker();
});

afterAll(async () => {
  await broker?.stop();
});

function producer() {
  const kafka = new Kafka({
    clientId: "fixture-test",
    brokers: [broker.brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  return kafka.producer();
}

test("the fixture decodes exactly what kafkajs produces: topic, key, binary value, headers, offsets", async () => {
  const p = producer();
  await p.connect();
  const value = Buffer.from([0, 1, 2, 250, 251, 255]);
  await p.send({
    topic: "rider-locations",
    acks: -1,
    messages: [
      { key: "r1", value, headers: { kind: "live" } },
      { key: "r2", value: Buffer.from("second") },
    ],
  });
  await p.sendBatch({
    acks: -1,
    topicMessages: [
      { topic: "a", messages: [{ key: "k", value: "va" }] },
      { topic: "b", messages: [{ key: null, value: "vb" }] },
    ],
  });
  await p.disconnect();
  const records = await broker.waitForRecords(4);
  expect(records[0]).toMatchObject({ topic: "rider-locations", partition: 0, offset: 0n });
  expect(records[0]?.key?.toString()).toBe("r1");
  expect(records[0]?.value?.equals(value)).toBe(true);
  expect(records[0]?.headers.kind?.toString()).toBe("live");
  expect(records[1]?.offset).toBe(1n);
  expect(
    records.slice(2).map((r) => [r.topic, r.key?.toString() ?? null, r.value?.toString()]),
  ).toEqual([
    ["a", "k", "va"],
    ["b", null, "vb"],
  ]);
});

test("a stopped broker fails sends; after restart on the same port sends succeed again", async () => {
  const before = broker.records.length;
  await broker.stop();
  const p = producer();
  await expect(
    p.connect().then(() => p.send({ topic: "t", messages: [{ value: "x" }] })),
  ).rejects.toThrow();
  await p.disconnect();
  await broker.restart();
  const again = producer();
  await again.connect();
  await again.send({ topic: "t", messages: [{ value: "after" }] });
  await again.disconnect();
  const records = await broker.waitForRecords(before + 1);
  expect(records.at(-1)?.value?.toString()).toBe("after");
});
