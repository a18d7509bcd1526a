import { Kafka, logLevel, type Producer } from "kafkajs";

/**
 * A kafkajs producer with the edge's settings: short timeouts and only a
 * blip's worth of retries, because each caller owns its own retry loop
 * (records wait in Redis or a bounded buffer instead of in kafkajs).
 */
export function createKafkaProducer(brokers: string[], clientId: string): Producer {
  const kafka = new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
  });
  return kafka.producer({ allowAutoTopicCreation: true });
}
