import { beforeAll } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { Redis } from "ioredis";
import pino from "pino";
import { loadIngestConfig } from "../../location-ingest/config";
import { type IngestApp, startIngest } from "../../location-ingest/ingest-app";
import { type GeoPing, GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { useRedisClient } from "./redis-connection";
import type { RedisServer } from "./redis-server";
import { TEST_JWT_SECRET } from "./tokens";

export interface TestIngest {
  readonly app: IngestApp;
  /** gRPC over h2c (served by the lean StreamPings path where it applies). */
  readonly grpc: Client<typeof LocationIngestService>;
  /** The Connect protocol over h2c (served by connect-node). */
  readonly connect: Client<typeof LocationIngestService>;
  /** Connect JSON over HTTP/1.1 on the HTTP port. */
  readonly http1: Client<typeof LocationIngestService>;
  readonly grpcUrl: string;
  readonly httpUrl: string;
  stop(): Promise<void>;
}

/** Starts an ingest in this process on free ports, with the given environment on top of the test defaults. */
export async function startTestIngest(env: Record<string, string>): Promise<TestIngest> {
  const config = loadIngestConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    INGEST_PORT: "0",
    INGEST_HTTP_PORT: "0",
    ...env,
  });
  const app = await startIngest(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }));
  const grpcUrl = `http://127.0.0.1:${app.grpcPort}`;
  const httpUrl = `http://127.0.0.1:${app.httpPort}`;
  let stopped = false;
  return {
    app,
    grpc: createClient(LocationIngestService, createGrpcTransport({ baseUrl: grpcUrl })),
    connect: createClient(
      LocationIngestService,
      createConnectTransport({ baseUrl: grpcUrl, httpVersion: "2" }),
    ),
    http1: createClient(
      LocationIngestService,
      createConnectTransport({ baseUrl: httpUrl, httpVersion: "1.1", useBinaryFormat: false }),
    ),
    grpcUrl,
    httpUrl,
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.drain();
    },
  };
}

/** A rider that moves a few metres north per ping, one second apart, ending now. */
export function pingTrack(
  count: number,
  options: { lat?: number; lng?: number; startSeq?: bigint } = {},
): GeoPing[] {
  const { lat = 51.5074, lng = -0.1278, startSeq = 1n } = options;
  const now = Date.now();
  return Array.from({ length: count }, (_, i) =>
    create(GeoPingSchema, {
      lat: lat + i * 0.00005,
      lng,
      accuracyM: 5,
      speedMps: 5,
      headingDeg: 0,
      recordedAtMs: BigInt(now - (count - 1 - i) * 1000),
      seq: startSeq + BigInt(i),
    }),
  );
}

export function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}

export interface IngestFixture {
  readonly redis: RedisServer;
  /** A plain ioredis client of that Redis: what a test seeds and inspects it with. */
  readonly db: Redis;
  readonly ingest: TestIngest;
}

/**
 * For a test file: a redis-server, an ioredis client and an ingest on it,
 * started before the file's tests and stopped after them, in this order:
 * `stopFirst` (what the file started against this Redis), the ingest, the
 * client, the server (see useRedisClient). Read the fields inside tests.
 */
export function useIngestOnRedis(
  env: Record<string, string> = {},
  options: { stopFirst?: () => Promise<unknown> } = {},
): IngestFixture {
  let ingest: TestIngest | undefined;
  const store = useRedisClient({
    stopFirst: async () => {
      await options.stopFirst?.();
      await ingest?.stop();
    },
  });
  beforeAll(async () => {
    ingest = await startTestIngest({ REDIS_URL: store.redis.url, ...env });
  });
  return {
    get redis() {
      return store.redis;
    },
    get db() {
      return store.db;
    },
    get ingest() {
      if (!ingest) throw new Error("the ingest is started in beforeAll: read it inside tests");
      return ingest;
    },
  };
}
