import { expect, test } from "bun:test";
import { createRequire } from "node:module";
import { answerRequest, type BrokerContext } from "./answer-request";
import { ApiKey, SUPPORTED_APIS } from "./protocol";
import { TopicLog } from "./topic-log";

// kafkajs's own per-version codecs (untyped internals), so every version the
// fixture advertises is checked against the client's encoders and decoders,
// not only the highest one a producer happens to pick.
interface KafkaJsRequest {
  apiKey: number;
  apiVersion: number;
  encode(): Promise<unknown>;
}
interface KafkaJsProtocol {
  request: KafkaJsRequest;
  response: { decode(payload: Buffer): Promise<unknown>; parse(data: unknown): Promise<unknown> };
}
interface KafkaJsDefinitions {
  versions: string[];
  protocol(options: { version: number }): (args?: Record<string, unknown>) => KafkaJsProtocol;
}
const kafkajs = createRequire(import.meta.resolve("kafkajs"));
const requests = kafkajs("./src/protocol/requests").requests as Record<string, KafkaJsDefinitions>;
const encodeFrame = kafkajs("./src/protocol/request") as (options: {
  correlationId: number;
  clientId: string;
  request: KafkaJsRequest;
}) => Promise<{ buffer: Buffer }>;

function createContext(): BrokerContext & { errors: Error[] } {
  const errors: Error[] = [];
  return {
    log: new TopicLog(2),
    address: () => ({ host: "127.0.0.1", port: 9092 }),
    onProtocolError: (error) => errors.push(error),
    errors,
  };
}

/** Sends one kafkajs-encoded request through the fixture and decodes the answer as kafkajs would. */
async function roundTrip(
  context: BrokerContext,
  name: string,
  version: number,
  args?: Record<string, unknown>,
): Promise<unknown> {
  const definitions = requests[name];
  if (!definitions) throw new Error(`kafkajs has no ${name} request`);
  const { request, response } = definitions.protocol({ version })(args);
  const frame = (await encodeFrame({ correlationId: 42, clientId: "t", request })).buffer;
  const reply = answerRequest(frame.subarray(4), context);
  if (!reply) throw new Error("no reply");
  expect(reply.readInt32BE(0)).toBe(reply.length - 4);
  expect(reply.readInt32BE(4)).toBe(42);
  return response.parse(await response.decode(reply.subarray(8)));
}

function versionsOf(apiKey: number): number[] {
  const api = SUPPORTED_APIS.find((a) => a.key === apiKey);
  if (!api) return [];
  return Array.from({ length: api.max - api.min + 1 }, (_, i) => api.min + i);
}

test.each(versionsOf(ApiKey.apiVersions))(
  "ApiVersions v%d lists what the fixture speaks",
  async (version) => {
    const data = (await roundTrip(createContext(), "ApiVersions", version)) as {
      apiVersions: { apiKey: number; minVersion: number; maxVersion: number }[];
    };
    expect(data.apiVersions).toEqual(
      SUPPORTED_APIS.map((api) => ({ apiKey: api.key, minVersion: api.min, maxVersion: api.max })),
    );
  },
);

test.each(versionsOf(ApiKey.metadata))(
  "Metadata v%d advertises node 0 leading every partition",
  async (version) => {
    const context = createContext();
    const data = (await roundTrip(context, "Metadata", version, {
      topics: ["rider-locations"],
    })) as {
      brokers: { nodeId: number; host: string; port: number }[];
      controllerId?: number;
      topicMetadata: {
        topic: string;
        partitionMetadata: { partitionId: number; leader: number }[];
      }[];
    };
    expect(data.brokers).toMatchObject([{ nodeId: 0, host: "127.0.0.1", port: 9092 }]);
    if (version >= 1) expect(data.controllerId).toBe(0);
    expect(data.topicMetadata).toMatchObject([
      {
        topic: "rider-locations",
        partitionMetadata: [
          { partitionId: 0, leader: 0 },
          { partitionId: 1, leader: 0 },
        ],
      },
    ]);
  },
);

test("Metadata v4+ without auto-creation reports an unknown topic as kafkajs expects", async () => {
  const context = createContext();
  const asked = roundTrip(context, "Metadata", 6, {
    topics: ["missing"],
    allowAutoTopicCreation: false,
  });
  await expect(asked).rejects.toMatchObject({ type: "UNKNOWN_TOPIC_OR_PARTITION" });
  expect(context.log.hasTopic("missing")).toBe(false);
});

test.each(versionsOf(ApiKey.produce))(
  "Produce v%d stores the batch and answers its base offset",
  async (version) => {
    const context = createContext();
    context.log.createTopic("rider-locations");
    const produce = (value: string) =>
      roundTrip(context, "Produce", version, {
        acks: -1,
        timeout: 1000,
        topicData: [
          {
            topic: "rider-locations",
            partitions: [{ partition: 1, messages: [{ key: "r1", value, headers: { h: "1" } }] }],
          },
        ],
      }) as Promise<{ topics: { partitions: { baseOffset: string; errorCode: number }[] }[] }>;
    await produce("first");
    const second = await produce("second");
    expect(second.topics[0]?.partitions[0]).toMatchObject({ baseOffset: "1", errorCode: 0 });
    expect(context.log.records.map((r) => [r.partition, r.offset, r.value?.toString()])).toEqual([
      [1, 0n, "first"],
      [1, 1n, "second"],
    ]);
  },
);

test("a partition the topic does not have gets UNKNOWN_TOPIC_OR_PARTITION", async () => {
  const context = createContext();
  context.log.createTopic("t");
  const sent = roundTrip(context, "Produce", 7, {
    acks: -1,
    timeout: 1000,
    topicData: [{ topic: "t", partitions: [{ partition: 5, messages: [{ value: "x" }] }] }],
  });
  await expect(sent).rejects.toMatchObject({ type: "UNKNOWN_TOPIC_OR_PARTITION" });
  expect(context.log.records).toEqual([]);
});

test("a corrupt record set gets CORRUPT_MESSAGE and is reported, not stored", async () => {
  const context = createContext();
  context.log.createTopic("t");
  const { request } = (requests.Produce as KafkaJsDefinitions).protocol({ version: 7 })({
    acks: -1,
    timeout: 1000,
    topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ value: "x" }] }] }],
  });
  const frame = Buffer.from(
    (await encodeFrame({ correlationId: 1, clientId: "t", request })).buffer,
  );
  frame[frame.length - 1] = (frame[frame.length - 1] ?? 0) ^ 0xff; // breaks the batch CRC
  const reply = answerRequest(frame.subarray(4), context);
  // Partition response: after correlation id, topic array, name, partition array, partition id.
  const errorAt = 8 + 4 + 2 + 1 + 4 + 4;
  expect(reply?.readInt16BE(errorAt)).toBe(2);
  expect(context.errors.map(String)).toEqual(["Error: record batch CRC mismatch"]);
  expect(context.log.records).toEqual([]);
});
