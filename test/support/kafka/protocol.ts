import type { KafkaReader } from "./wire";

/** The api keys the fixture answers; anything else closes the connection. */
export const ApiKey = { produce: 0, metadata: 3, apiVersions: 18 } as const;

/** Kafka error codes the fixture sends (from the protocol's error table). */
export const ErrorCode = {
  none: 0,
  corruptMessage: 2,
  unknownTopicOrPartition: 3,
  notEnoughReplicas: 19,
  unsupportedVersion: 35,
} as const;

export interface ApiRange {
  readonly key: number;
  readonly min: number;
  readonly max: number;
}

/**
 * What ApiVersions advertises. kafkajs takes min(its highest, our max) and
 * ignores `min`, so `max` is what decides the version it speaks. Produce
 * starts at v3 because v0-v2 carry the old MessageSet format, not RecordBatch v2.
 */
export const SUPPORTED_APIS: readonly ApiRange[] = [
  { key: ApiKey.produce, min: 3, max: 7 },
  { key: ApiKey.metadata, min: 0, max: 6 },
  { key: ApiKey.apiVersions, min: 0, max: 2 },
];

export function supports(apiKey: number, version: number): boolean {
  return SUPPORTED_APIS.some(
    (api) => api.key === apiKey && version >= api.min && version <= api.max,
  );
}

/** Request header v1: every non-flexible version of the APIs above uses it. */
export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

export function parseRequestHeader(reader: KafkaReader): RequestHeader {
  return {
    apiKey: reader.int16(),
    apiVersion: reader.int16(),
    correlationId: reader.int32(),
    clientId: reader.nullableString(),
  };
}
