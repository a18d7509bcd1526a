import { createServer, type Server, type Socket } from "node:net";
import { answerRequest, type BrokerContext } from "./kafka/answer-request";
import { serveConnection } from "./kafka/connection";
import { ApiKey } from "./kafka/protocol";
import { type ProducedRecord, TopicLog } from "./kafka/topic-log";

export type { ProducedRecord } from "./kafka/topic-log";
export { ApiKey };

export interface KafkaBrokerOptions {
  /** Topics that exist from the start; others are created when Metadata asks for them. */
  topics?: string[];
  /** Partitions per topic, all led by this broker (default 1). */
  partitions?: number;
  /**
   * Asked once per Produce request; returning true answers every partition
   * with NOT_ENOUGH_REPLICAS (retriable) and stores nothing.
   */
  failProduce?: () => boolean;
}

export interface KafkaBroker {
  readonly host: string;
  readonly port: number;
  /** The KAFKA_BROKERS form: "127.0.0.1:PORT". */
  readonly brokers: string;
  /** Every record stored through Produce, in arrival order (live array). */
  readonly records: ProducedRecord[];
  /** Requests refused or record sets that failed to decode; empty when kafkajs spoke well. */
  readonly protocolErrors: Error[];
  /**
   * Api keys (ApiKey) of the requests read and left unanswered since
   * freeze(), in arrival order (live array).
   */
  readonly heldRequests: number[];
  /** Resolves with a snapshot once at least `count` records have arrived (default 5000 ms). */
  waitForRecords(count: number, timeoutMs?: number): Promise<ProducedRecord[]>;
  /** Closes the listener and destroys every client connection: an outage. */
  stop(): Promise<void>;
  /** Listens again on the same port, keeping records and offsets. */
  restart(): Promise<void>;
  /**
   * A broker that hangs (a stalled disk, a long pause): from now on every
   * request is read and never answered, nothing is stored, no connection is
   * closed and new ones are still accepted. For the fixture's life: stop()
   * closes the connections as in an outage, and restart() listens again,
   * still frozen.
   */
  freeze(): void;
}

const HOST = "127.0.0.1";
const DEFAULT_WAIT_MS = 5_000;

/**
 * A single-node Kafka broker (node 0, also the controller) on a free port
 * that speaks the real wire protocol — ApiVersions v0-2, Metadata v0-6,
 * Produce v3-7 with RecordBatch v2 (uncompressed or gzip) — so tests see
 * exactly the bytes kafkajs's producer sends. Nothing else is implemented:
 * other api keys close the connection.
 */
export async function startKafkaBroker(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
  const log = new TopicLog(options.partitions ?? 1, options.topics);
  const protocolErrors: Error[] = [];
  const sockets = new Set<Socket>();
  const heldRequests: number[] = [];
  let frozen = false;
  let server: Server | undefined;
  let port = 0;

  const context: BrokerContext = {
    log,
    address: () => ({ host: HOST, port }),
    failProduce: options.failProduce,
    onProtocolError: (error) => protocolErrors.push(error),
  };

  function onConnection(socket: Socket): void {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    serveConnection(
      socket,
      (frame) => {
        if (!frozen) return answerRequest(frame, context);
        // A request header starts with its api key (int16).
        heldRequests.push(frame.readInt16BE(0));
        return null;
      },
      context.onProtocolError,
    );
  }

  async function listen(onPort: number): Promise<void> {
    if (server) throw new Error("kafka fixture: already listening; stop() before restart()");
    const listener = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(onPort, HOST, () => {
        listener.off("error", reject);
        resolve();
      });
    });
    const address = listener.address();
    if (!address || typeof address === "string") throw new Error("kafka fixture: no TCP address");
    port = address.port;
    server = listener;
  }

  async function stop(): Promise<void> {
    const listener = server;
    if (!listener) return;
    server = undefined;
    // Stop accepting first, so no client slips in between the destroy and the close.
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
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
    records: log.records,
    protocolErrors,
    heldRequests,
    waitForRecords: (count, timeoutMs = DEFAULT_WAIT_MS) => log.waitForRecords(count, timeoutMs),
    stop,
    restart: () => listen(port),
    freeze() {
      frozen = true;
    },
  };
}
