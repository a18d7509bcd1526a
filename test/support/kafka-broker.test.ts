import { afterEach, expect, test } from "bun:test";
import { CompressionTypes, Kafka, KafkaJSError, logLevel, type Producer } from "kafkajs";
import {
  ApiKey,
  type KafkaBroker,
  type KafkaBrokerOptions,
  type ProducedRecord,
  startKafkaBroker,
} from "./kafka-broker";
import { waitUntil } from "./wait";

const TOPIC = "rider-locations";
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  // Last registered first: producers disconnect before their broker stops.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startBroker(options?: KafkaBrokerOptions): Promise<KafkaBroker> {
  const broker = await startKafkaBroker(options);
  cleanups.push(() => broker.stop());
  return broker;
}

async function connectProducer(broker: KafkaBroker): Promise<Producer> {
  const kafka = new Kafka({
    clientId: "kafka-fixture-test",
    brokers: [broker.brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 250,
    requestTimeout: 1_000,
    // Short and few, so an outage fails a send in milliseconds, not seconds.
    retry: { retries: 1, initialRetryTime: 20, maxRetryTime: 50 },
  });
  const producer: Producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  return producer;
}

/** The fields a test compares; offsets and timestamps are checked separately. */
function content(record: ProducedRecord) {
  return {
    topic: record.topic,
    partition: record.partition,
    key: record.key?.toString("hex") ?? null,
    value: record.value?.toString("hex") ?? null,
    headers: Object.fromEntries(
      Object.entries(record.headers).map(([name, value]) => [name, value.toString("hex")]),
    ),
  };
}

const hex = (value: string | Buffer) => Buffer.from(value).toString("hex");

test("keys, binary values and headers arrive byte for byte, with offsets in order", async () => {
  const broker = await startBroker();
  const producer = await connectProducer(broker);
  const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const metadata = await producer.send({
    topic: TOPIC,
    acks: -1,
    messages: [
      { key: "r1", value: everyByte, headers: { kind: "live", trace: Buffer.from([0, 255]) } },
      { key: Buffer.from([1, 2, 3]), value: Buffer.alloc(0), timestamp: "1700000000123" },
      { key: null, value: "plain text ✓" },
    ],
  });
  expect(metadata).toMatchObject([
    { topicName: TOPIC, partition: 0, errorCode: 0, baseOffset: "0" },
  ]);

  const records = await broker.waitForRecords(3);
  expect(records.map(content)).toEqual([
    {
      topic: TOPIC,
      partition: 0,
      key: hex("r1"),
      value: everyByte.toString("hex"),
      headers: { kind: hex("live"), trace: "00ff" },
    },
    { topic: TOPIC, partition: 0, key: "010203", value: "", headers: {} },
    { topic: TOPIC, partition: 0, key: null, value: hex("plain text ✓"), headers: {} },
  ]);
  expect(records.map((r) => r.offset)).toEqual([0n, 1n, 2n]);
  expect(records[1]?.timestamp).toBe(1700000000123n);

  const next = await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: "fourth" }] });
  expect(next[0]?.baseOffset).toBe("3");
  expect(broker.protocolErrors).toEqual([]);
});

test("sendBatch across two topics lands in both, each with its own offsets", async () => {
  const broker = await startBroker();
  const producer = await connectProducer(broker);
  await producer.sendBatch({
    acks: -1,
    topicMessages: [
      {
        topic: TOPIC,
        messages: [
          { key: "r1", value: "a" },
          { key: "r2", value: "b" },
        ],
      },
      { topic: "order-events", messages: [{ key: "o1", value: "placed", headers: { v: "1" } }] },
    ],
  });
  const records = await broker.waitForRecords(3);
  const byTopic = (topic: string) =>
    records
      .filter((r) => r.topic === topic)
      .map((r) => [r.key?.toString(), r.value?.toString(), r.offset]);
  expect(byTopic(TOPIC)).toEqual([
    ["r1", "a", 0n],
    ["r2", "b", 1n],
  ]);
  expect(byTopic("order-events")).toEqual([["o1", "placed", 0n]]);
  expect(records.find((r) => r.topic === "order-events")?.headers.v?.toString()).toBe("1");
});

test("gzip batches (kafkajs's built-in codec) are inflated", async () => {
  const broker = await startBroker();
  const producer = await connectProducer(broker);
  const value = Buffer.alloc(10_000, "squeeze me ");
  await producer.send({
    topic: TOPIC,
    acks: -1,
    compression: CompressionTypes.GZIP,
    messages: [
      { key: "r1", value, headers: { h: "x" } },
      { key: "r2", value: "small" },
    ],
  });
  const records = await broker.waitForRecords(2);
  expect(records[0]?.value?.equals(value)).toBe(true);
  expect(records[0]?.headers.h?.toString()).toBe("x");
  expect(records[1]?.value?.toString()).toBe("small");
});

test("topics have the configured partitions, each counting its own offsets", async () => {
  const broker = await startBroker({ topics: [TOPIC], partitions: 3 });
  const producer = await connectProducer(broker);
  await producer.send({
    topic: TOPIC,
    acks: -1,
    messages: [
      { partition: 2, value: "a" },
      { partition: 0, value: "b" },
      { partition: 2, value: "c" },
    ],
  });
  const records = await broker.waitForRecords(3);
  const placed = records.map((r) => [r.partition, r.offset, r.value?.toString()]);
  expect(placed).toHaveLength(3);
  expect(placed).toEqual(
    expect.arrayContaining([
      [2, 0n, "a"],
      [2, 1n, "c"],
      [0, 0n, "b"],
    ]),
  );
});

test("acks=0 sends are stored although the broker sends no response", async () => {
  const broker = await startBroker();
  const producer = await connectProducer(broker);
  await producer.send({ topic: TOPIC, acks: 0, messages: [{ key: "r1", value: "fire" }] });
  const [record] = await broker.waitForRecords(1);
  expect(record?.value?.toString()).toBe("fire");
});

test("after stop() a send fails; after restart() on the same port the same producer catches up", async () => {
  const broker = await startBroker();
  const producer = await connectProducer(broker);
  await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: "before" }] });
  const port = broker.port;

  await broker.stop();
  const failure = await producer
    .send({ topic: TOPIC, acks: -1, messages: [{ value: "during" }] })
    .then(
      () => null,
      (error: unknown) => error,
    );
  expect(failure).toBeInstanceOf(KafkaJSError);

  await broker.restart();
  expect(broker.port).toBe(port);
  await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: "after" }] });
  const records = await broker.waitForRecords(2);
  expect(records.map((r) => [r.value?.toString(), r.offset])).toEqual([
    ["before", 0n],
    ["after", 1n],
  ]);
});

test("several producers sending at once each keep their order, offsets stay unique", async () => {
  const broker = await startBroker();
  const producers = await Promise.all(Array.from({ length: 4 }, () => connectProducer(broker)));
  await Promise.all(
    producers.map(async (producer, p) => {
      for (let i = 0; i < 10; i++) {
        await producer.send({
          topic: TOPIC,
          acks: -1,
          messages: [{ key: `p${p}`, value: String(i), headers: { producer: String(p) } }],
        });
      }
    }),
  );
  const records = await broker.waitForRecords(40);
  expect(records).toHaveLength(40);
  expect(new Set(records.map((r) => r.offset)).size).toBe(40);
  for (let p = 0; p < producers.length; p++) {
    const mine = records.filter((r) => r.key?.toString() === `p${p}`);
    expect(mine.map((r) => r.value?.toString())).toEqual(
      Array.from({ length: 10 }, (_, i) => `${i}`),
    );
    expect(mine.every((r) => r.headers.producer?.toString() === String(p))).toBe(true);
  }
});

test("failProduce answers NOT_ENOUGH_REPLICAS: kafkajs retries, and gives up when it persists", async () => {
  let failuresLeft = 1;
  const broker = await startBroker({ failProduce: () => failuresLeft-- > 0 });
  const producer = await connectProducer(broker);
  await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: "retried" }] });
  expect(broker.records.map((r) => r.value?.toString())).toEqual(["retried"]);

  failuresLeft = Number.POSITIVE_INFINITY;
  const failure = await producer
    .send({ topic: TOPIC, acks: -1, messages: [{ value: "lost" }] })
    .then(
      () => null,
      (error: unknown) => error,
    );
  expect(failure).toBeInstanceOf(KafkaJSError);
  expect(String((failure as KafkaJSError & { cause?: unknown }).cause)).toMatch(/replicas/i);
  expect(broker.records).toHaveLength(1);
});

test("waitForRecords rejects with the count it saw when the deadline passes", async () => {
  const broker = await startBroker();
  await expect(broker.waitForRecords(1, 30)).rejects.toThrow(
    "expected at least 1 records within 30 ms, got 0",
  );
});

test("after freeze() requests are read and never answered: a send times out, nothing is stored", async () => {
  const broker = await startBroker();
  const producer = await connectProducer(broker);
  // The topic's metadata is known, so the next send goes straight to Produce.
  await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: "before" }] });
  broker.freeze();
  const failure = producer.send({ topic: TOPIC, acks: -1, messages: [{ value: "held" }] }).then(
    () => null,
    (error: unknown) => error,
  );
  await waitUntil(() => broker.heldRequests.includes(ApiKey.produce), 2_000, "a held produce");
  const error = await failure;
  expect(error).toBeInstanceOf(KafkaJSError);
  // kafkajs's request timeout, once per attempt (retries: 1), never an answer.
  expect(String(error)).toMatch(/Produce\(key: 0.*\) timed out/);
  expect(broker.records.map((r) => r.value?.toString())).toEqual(["before"]);
  expect(broker.protocolErrors).toHaveLength(0);
});
