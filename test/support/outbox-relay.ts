import { beforeAll } from "bun:test";
import type { Subprocess } from "bun";
import pino from "pino";
import { connectRedis, type RedisConnection } from "../../core/redis/client";
import { keys, ORDER_PARTITIONS } from "../../core/redis/keys";
import { transitionOrder } from "../../core/redis/order-scripts";
import { type KafkaBroker, startKafkaBroker } from "./kafka-broker";
import { seedOrder } from "./orders";
import { type RedisClientFixture, useRedisClient } from "./redis-connection";

export interface OutboxRelayFixture extends RedisClientFixture {
  /** The Kafka the gateways relay to (the wire-protocol fixture). */
  readonly broker: KafkaBroker;
  /** The project's own connection, for the order scripts that fill the outbox. */
  readonly connection: RedisConnection;
  /** Gateway processes the test started: killed with -9 before Redis stops. */
  readonly children: Subprocess[];
  /** Each partition's lease value (`<node id> <instance token>`), null where none holds it. */
  leaseHolders(): Promise<(string | null)[]>;
  /** An assigned order moved to READY through the order script: one outbox entry to relay. */
  changeOneOrder(orderId: string): Promise<void>;
}

/** For a test file of relaying gateway processes: a redis-server, a Kafka broker, a connection. */
export function useOutboxRelay(name: string): OutboxRelayFixture {
  const children: Subprocess[] = [];
  const started = {} as { broker: KafkaBroker; connection: RedisConnection };
  const redis = useRedisClient({
    stopFirst: async () => {
      for (const child of children) child.kill(9);
      await Promise.all(children.map((child) => child.exited));
      await started.connection?.close();
      await started.broker?.stop();
    },
  });
  beforeAll(async () => {
    started.broker = await startKafkaBroker();
    started.connection = await connectRedis(
      { mode: "standalone", url: redis.redis.url },
      name,
      pino({ level: "silent" }),
    );
  });
  return {
    get redis() {
      return redis.redis;
    },
    get db() {
      return redis.db;
    },
    get broker() {
      return started.broker;
    },
    get connection() {
      return started.connection;
    },
    children,
    leaseHolders: () =>
      redis.db.mget(...Array.from({ length: ORDER_PARTITIONS }, (_, p) => keys.outboxLease(p))),
    async changeOneOrder(orderId) {
      await seedOrder(redis.db, { orderId, customerId: "c", riderId: "r" });
      await transitionOrder(started.connection, {
        orderId,
        expectedVersion: 2,
        to: "READY",
        legalFrom: ["ASSIGNED"],
      });
    },
  };
}
