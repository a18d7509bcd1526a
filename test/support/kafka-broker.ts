import { createServer, type Server, type Socket } from "node:net";
import { decodeRecordSet } from "./kafka/record-batch";
import { KafkaReader, KafkaWriter } from "./kafka/wire";

/** One record as the fixture received it through Produce. */
export interface ProducedRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  timestamp: bigint;
  offset: bigint;
}

export interface KafkaBroker {
  readonly host: string;
  readonly port: number;
  /** The KAFKA_BROKERS form. */
  readonly brokers: string;
  readonly records: ProducedRecord[];
  /** Resolves once at least `count` records have arrived. */
  waitForRecords(count: number, timeoutMs?: number): Promise<ProducedRecord[]>;
  /** Closes the listener and every client connection (an outage). */
  stop(): Promise<void>;
  /** Listens again on the same port, keeping the records. */
  restart(): Promise<void>;
}

const API = { produce: 0, metadata: 3, apiVersions: 18 } as const;
/** Versions this fixture speaks; kafkajs picks the highest it shares. */
const SUPPORTED = [
  { key: API.produce, min: 3, max: 3 },
  { key: API.metadata, min: 0, max: 1 },
  { key: API.apiVersions, min: 0, max: 2 },
];
const HOST = "127.0.0.1";

/**
 * A single-node Kafka broker that speaks just enough of the real wire
 * protocol (ApiVersions, Metadata, Produce with RecordBatch v2) for kafkajs's
 * producer, so tests check the bytes kafkajs actually sends.
 */
export async function startKafkaBroker(
  options: { partitions?: number } = {},
): Promise<KafkaBroker> {
  const partitions = options.partitions ?? 1;
  const records: ProducedRecord[] = [];
  const topics = new Set<string>();
  const nextOffset = new Map<string, bigint>();
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let port = 0;
  let server: Server;

  function handle(frame: Buffer): Buffer | undefined {
    const reader = new KafkaReader(frame);
    const apiKey = reader.int16();
    const apiVersion = reader.int16();
    const correlationId = reader.int32();
    reader.nullableString(); // client id
    const body = new KafkaWriter().int32(correlationId);
    if (apiKey === API.apiVersions) {
      body.int16(0).array(SUPPORTED, (w, api) => w.int16(api.key).int16(api.min).int16(api.max));
      if (apiVersion >= 1) body.int32(0);
      return body.build();
    }
    if (apiKey === API.metadata) return metadata(reader, apiVersion, body).build();
    if (apiKey === API.produce && apiVersion === 3) return produce(reader, body)?.build();
    throw new Error(`api ${apiKey} v${apiVersion} not supported by the fixture`);
  }

  function metadata(reader: KafkaReader, version: number, body: KafkaWriter): KafkaWriter {
    const requested = reader.array((r) => r.string());
    for (const topic of requested ?? []) topics.add(topic);
    const listed = requested && requested.length > 0 ? requested : [...topics];
    body.array([0], (w) => {
      w.int32(0).string(HOST).int32(port);
      if (version >= 1) w.string(null);
    });
    if (version >= 1) body.int32(0);
    return body.array(listed, (w, topic) => {
      w.int16(0).string(topic);
      if (version >= 1) w.boolean(false);
      w.array(
        Array.from({ length: partitions }, (_, i) => i),
        (pw, partition) =>
          pw
            .int16(0)
            .int32(partition)
            .int32(0)
            .array([0], (x) => x.int32(0))
            .array([0], (x) => x.int32(0)),
      );
    });
  }

  function produce(reader: KafkaReader, body: KafkaWriter): KafkaWriter | undefined {
    reader.nullableString(); // transactional id
    const acks = reader.int16();
    reader.int32(); // timeout
    const data =
      reader.array((r) => ({
        topic: r.string(),
        partitions: r.array((p) => ({ partition: p.int32(), recordSet: p.bytes() })) ?? [],
      })) ?? [];
    const results = data.map(({ topic, partitions: parts }) => ({
      topic,
      parts: parts.map(({ partition, recordSet }) => {
        const key = `${topic}/${partition}`;
        const base = nextOffset.get(key) ?? 0n;
        const decoded = recordSet ? decodeRecordSet(recordSet) : [];
        decoded.forEach((record, i) => {
          records.push({ topic, partition, ...record, offset: base + BigInt(i) });
        });
        nextOffset.set(key, base + BigInt(decoded.length));
        return { partition, base };
      }),
    }));
    for (const wake of waiters) wake();
    if (acks === 0) return undefined;
    body.array(results, (w, { topic, parts }) =>
      w
        .string(topic)
        .array(parts, (pw, { partition, base }) =>
          pw.int32(partition).int16(0).int64(base).int64(-1n),
        ),
    );
    return body.int32(0);
  }

  function onConnection(socket: Socket): void {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const size = pending.readInt32BE(0);
        if (pending.length < 4 + size) break;
        const frame = pending.subarray(4, 4 + size);
        pending = pending.subarray(4 + size);
        try {
          const response = handle(frame);
          if (response) socket.write(Buffer.concat([int32(response.length), response]));
        } catch {
          // A request the fixture cannot parse or serve: hang up, as a broker would.
          socket.destroy();
          return;
        }
      }
    });
  }

  async function listen(onPort: number): Promise<void> {
    server = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(onPort, HOST, () => resolve());
    });
    const address = server.address();
    port = typeof address === "object" && address ? address.port : onPort;
  }

  await listen(0);
  return {
    host: HOST,
    get port() {
      return port;
    },
    get brokers() {
      return `${HOST}:${port}`;
    },
    records,
    waitForRecords(count, timeoutMs = 5_000) {
      if (records.length >= count) return Promise.resolve(records);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} records, got ${records.length}`));
        }, timeoutMs);
        const check = () => {
          if (records.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(records);
        };
        waiters.add(check);
      });
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    restart: () => listen(port),
  };
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}
