import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { createKafkaProducer } from "../core/kafka/kafka-producer";
import type { RedisConnection } from "../core/redis/client";
import { keys } from "../core/redis/keys";
import { trimOutbox } from "../core/redis/order-scripts";

export const ORDER_EVENTS_TOPIC = "order-events";
const BATCH = 500;

/**
 * Moves order status changes from their outbox streams (`outbox:{order}`,
 * written by the same script as the change) to Kafka `order-events`, at
 * least once: entries are removed only after the broker's ack, so a relay
 * that dies mid-batch leaves them for the next pass, which sends them again.
 * One gateway relays at a time (a lock with a TTL); outboxes are found by
 * scanning every master, so no index has to be kept in step with them.
 */
export function startOutboxRelay(options: {
  connection: RedisConnection;
  brokers: string[];
  nodeId: string;
  everyMs: number;
  logger: Logger;
}): { relayOnce(): Promise<number>; stop(): Promise<void> } {
  const { connection, brokers, nodeId, everyMs, logger } = options;
  const producer = createKafkaProducer(brokers, "delivery-edge-outbox-relay");
  const { client } = connection;
  let connected = false;
  let failing = false;

  async function holdLock(): Promise<boolean> {
    const lockMs = everyMs * 10;
    if ((await client.set(keys.outboxRelayLock(), nodeId, "PX", lockMs, "NX")) === "OK")
      return true;
    if ((await client.get(keys.outboxRelayLock())) !== nodeId) return false;
    await client.pexpire(keys.outboxRelayLock(), lockMs);
    return true;
  }

  async function outboxKeys(): Promise<string[]> {
    const nodes: (Redis | Cluster)[] =
      connection.mode === "cluster" ? (client as Cluster).nodes("master") : [client];
    const found = new Set<string>();
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, batch] = await (node as Redis).scan(
          cursor,
          "MATCH",
          keys.orderOutboxPattern(),
          "COUNT",
          1_000,
        );
        for (const key of batch) found.add(key);
        cursor = next;
      } while (cursor !== "0");
    }
    return [...found];
  }

  async function relayOnce(): Promise<number> {
    if (!connection.isReady() || !(await holdLock())) return 0;
    let relayed = 0;
    for (const key of await outboxKeys()) {
      const entries = await client.xrange(key, "-", "+", "COUNT", BATCH);
      if (entries.length === 0) continue;
      if (!connected) {
        await producer.connect();
        connected = true;
      }
      await producer.send({
        topic: ORDER_EVENTS_TOPIC,
        acks: -1,
        messages: entries.map(([, fields]) => {
          const payload = fields[1] ?? "{}";
          return {
            key: (JSON.parse(payload) as { orderId?: string }).orderId ?? null,
            value: payload,
          };
        }),
      });
      await trimOutbox(
        connection,
        key,
        entries.map(([id]) => id),
      );
      relayed += entries.length;
    }
    return relayed;
  }

  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    relayOnce()
      .then(() => {
        if (failing) logger.info("outbox relay recovered");
        failing = false;
      })
      .catch((error: unknown) => {
        if (!failing)
          logger.warn({ err: error }, "outbox relay failed; entries stay until the next pass");
        failing = true;
        connected = false;
      })
      .finally(() => {
        running = false;
      });
  }, everyMs);
  timer.unref();

  return {
    relayOnce,
    async stop() {
      clearInterval(timer);
      await producer.disconnect().catch(() => undefined);
    },
  };
}
