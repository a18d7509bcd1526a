import { afterEach, expect, test } from "bun:test";
import { connect } from "node:net";
import { Kafka, logLevel } from "kafkajs";
import { type KafkaBroker, startKafkaBroker } from "../kafka-broker";
import { FrameSplitter } from "./connection";
import { ApiKey } from "./protocol";
import { KafkaWriter } from "./wire";

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function requestFrame(apiKey: number, version: number, correlationId: number, body?: Buffer) {
  const payload = new KafkaWriter().int16(apiKey).int16(version).int32(correlationId).string("raw");
  if (body) payload.raw(body);
  const bytes = payload.build();
  return new KafkaWriter().int32(bytes.length).raw(bytes).build();
}

const apiVersions = (correlationId: number) => requestFrame(ApiKey.apiVersions, 2, correlationId);

test("a frame fed one byte at a time comes out whole, once", () => {
  const splitter = new FrameSplitter();
  const frame = apiVersions(1);
  const out = [...frame].flatMap((byte) => splitter.push(Buffer.from([byte])));
  expect(out).toEqual([frame.subarray(4)]);
});

test("several frames and the start of another in one chunk: the whole ones now, the rest later", () => {
  const splitter = new FrameSplitter();
  const [a, b, c] = [apiVersions(1), apiVersions(2), apiVersions(3)];
  const stream = Buffer.concat([a, b, c]);
  const cut = a.length + b.length + 5;
  expect(splitter.push(stream.subarray(0, cut))).toEqual([a.subarray(4), b.subarray(4)]);
  expect(splitter.push(stream.subarray(cut))).toEqual([c.subarray(4)]);
});

test("a negative or oversized frame length is refused", () => {
  expect(() => new FrameSplitter().push(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(
    "frame size -1 is out of range",
  );
  expect(() => new FrameSplitter().push(Buffer.from([0x7f, 0, 0, 0]))).toThrow("out of range");
});

/** A bare TCP client that collects the broker's response frames. */
async function openRawClient(broker: KafkaBroker) {
  const socket = connect(broker.port, broker.host);
  cleanups.push(async () => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const splitter = new FrameSplitter();
  const frames: Buffer[] = [];
  let wake = () => {};
  socket.on("data", (chunk: Buffer) => {
    frames.push(...splitter.push(chunk));
    wake();
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    socket,
    closed,
    async next(): Promise<Buffer> {
      while (frames.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return frames.shift() as Buffer;
    },
  };
}

test("over TCP, packed and dribbled requests are all answered, in request order", async () => {
  const broker = await startKafkaBroker();
  cleanups.push(() => broker.stop());
  const client = await openRawClient(broker);
  const allTopics = new KafkaWriter().int32(-1).boolean(true).build();
  const packed = [apiVersions(1), requestFrame(ApiKey.metadata, 6, 2, allTopics)];
  client.socket.write(Buffer.concat(packed));
  for (const byte of apiVersions(3)) client.socket.write(Buffer.from([byte]));
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await client.next()).readInt32BE(0));
  expect(ids).toEqual([1, 2, 3]);
});

test("an unknown api key closes that connection only; the broker keeps serving", async () => {
  const broker = await startKafkaBroker();
  cleanups.push(() => broker.stop());
  const client = await openRawClient(broker);
  client.socket.write(requestFrame(1, 11, 7)); // Fetch: not implemented by the fixture
  await client.closed;
  expect(broker.protocolErrors.map(String)).toEqual([
    "Error: kafka fixture: api key 1 v11 is not supported",
  ]);

  const kafka = new Kafka({ brokers: [broker.brokers], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  await producer.send({ topic: "t", acks: -1, messages: [{ value: "still up" }] });
  expect((await broker.waitForRecords(1))[0]?.value?.toString()).toBe("still up");
});
