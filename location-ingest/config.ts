import { ConfigError, type Env, readBool, readInt, readPort } from "../core/config/env";
import {
  type AuthConfig,
  type AuthFailureConfig,
  loadAuthConfig,
  loadAuthFailureConfig,
  loadKafkaBrokers,
  loadRedisConfig,
  type RedisConfig,
  readBindHost,
  readLiveAgeMs,
  readNodeId,
} from "../core/config/shared-config";
import { DEFAULT_DRAIN_TIMEOUT_MS, DRAIN_STEP_WAIT_MS } from "../core/lifecycle/shutdown";
import { type HostLimits, loadTransportLimits, type TransportLimits } from "./transport-config";
import { FLUSH_TIMEOUT_MS, locationLogCloseWaitMs } from "./writer/drain-waits";

export interface PingLimits {
  /** How far ahead of the server clock a phone's timestamp may be. */
  readonly maxFutureSkewMs: number;
  /** Oldest live ping accepted (StreamPings, SendPing). */
  readonly maxLiveAgeMs: number;
  /** Oldest backlog ping accepted (UploadPings). */
  readonly maxBacklogAgeMs: number;
  /** Implied speed from the previous ping above which a ping is a teleport. */
  readonly maxSpeedMps: number;
  /** Accuracy radius above which a fix is too poor to use. */
  readonly maxAccuracyM: number;
}

export interface IntervalPolicy {
  readonly parkedMs: number;
  readonly movingMs: number;
  /** After a sharp turn the next fix is wanted almost at once. */
  readonly turnMs: number;
  /** While carrying or fetching an order and near its pickup or drop-off. */
  readonly nearStopMs: number;
  readonly parkedBelowMps: number;
  readonly sharpTurnDeg: number;
  readonly nearStopM: number;
}

export interface GeofencePolicy {
  readonly pickupRadiusM: number;
  readonly dropoffRadiusM: number;
  /** A rider inside a fence counts as out only this much past its radius (GPS jitter). */
  readonly exitMarginM: number;
  /** Leaving the pickup after READY also moves the order to PICKED_UP. */
  readonly autoStatus: boolean;
}

export interface IngestConfig extends AuthFailureConfig {
  readonly redis: RedisConfig;
  readonly auth: AuthConfig;
  readonly kafkaBrokers?: string[];
  /** Names this process in the live figures (`edge:node-stats`). */
  readonly nodeId: string;
  /** The address both ports bind (BIND_HOST). */
  readonly bindHost: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly limits: PingLimits;
  readonly interval: IntervalPolicy;
  readonly geofence: GeofencePolicy;
  /** Riders not seen for this long leave the city's geo set. */
  readonly staleRiderMs: number;
  readonly sweepEveryMs: number;
  /** Pings waiting for a flush before new ones are refused (overloaded). */
  readonly maxQueuedPings: number;
  /** Most pings in one flush (one pipeline per shard). */
  readonly maxBatchPings: number;
  /** Flushes outstanding at once. */
  readonly maxFlushesInFlight: number;
  /** Capped length of the Redis-stream location log per city (approximate). */
  readonly locationStreamMaxLen: number;
  /** Location records held for Kafka while it is slow or down; more are spilled to Redis. */
  readonly kafkaBufferRecords: number;
  /** Longest wait between retries of a failed Kafka send. */
  readonly kafkaRetryMaxMs: number;
  /** Cap of a city's spill stream (location records waiting in Redis for Kafka); past it they are lost, counted. */
  readonly kafkaSpillMaxRecords: number;
  /** How long a drain waits for Kafka to take the buffer before spilling the rest to Redis. */
  readonly kafkaDrainWaitMs: number;
  /** The replay lease of a city's spill; a replay pass runs every fifth of it. */
  readonly kafkaReplayLeaseMs: number;
  readonly maxUploadPings: number;
  readonly drainReconnectMs: number;
  readonly transport: TransportLimits;
}

/** Reads and checks the ingest's configuration; throws ConfigError naming a bad variable. */
export function loadIngestConfig(env: Env, host: HostLimits = {}): IngestConfig {
  const kafkaBrokers = loadKafkaBrokers(env);
  const staleRiderMs = readInt(env, "RIDER_STALE_MS", 300_000, { min: 1_000 });
  return Object.freeze({
    redis: loadRedisConfig(env),
    auth: loadAuthConfig(env),
    ...(kafkaBrokers ? { kafkaBrokers } : {}),
    nodeId: readNodeId(env, "INGEST_NODE_ID"),
    bindHost: readBindHost(env),
    grpcPort: readPort(env, "INGEST_PORT", 8081),
    httpPort: readPort(env, "INGEST_HTTP_PORT", 8082),
    limits: Object.freeze({
      maxFutureSkewMs: readInt(env, "PING_MAX_FUTURE_SKEW_MS", 5_000, { min: 0 }),
      maxLiveAgeMs: readLiveAgeMs(env),
      maxBacklogAgeMs: readInt(env, "PING_MAX_BACKLOG_AGE_MS", 86_400_000, { min: 1_000 }),
      maxSpeedMps: readInt(env, "PING_MAX_SPEED_MPS", 70, { min: 1 }),
      maxAccuracyM: readInt(env, "PING_MAX_ACCURACY_M", 150, { min: 1 }),
    }),
    interval: loadIntervalPolicy(env, staleRiderMs),
    geofence: Object.freeze({
      pickupRadiusM: readInt(env, "GEOFENCE_PICKUP_RADIUS_M", 75, { min: 1 }),
      dropoffRadiusM: readInt(env, "GEOFENCE_DROPOFF_RADIUS_M", 75, { min: 1 }),
      exitMarginM: readInt(env, "GEOFENCE_EXIT_MARGIN_M", 25, { min: 0 }),
      autoStatus: readBool(env, "GEOFENCE_AUTO_STATUS", false),
    }),
    staleRiderMs,
    sweepEveryMs: readInt(env, "RIDER_SWEEP_EVERY_MS", 15_000, { min: 100 }),
    maxQueuedPings: readInt(env, "INGEST_MAX_QUEUED_PINGS", 50_000, { min: 1 }),
    maxBatchPings: readInt(env, "INGEST_MAX_BATCH_PINGS", 256, { min: 1 }),
    maxFlushesInFlight: readInt(env, "INGEST_MAX_FLUSHES_IN_FLIGHT", 4, { min: 1, max: 64 }),
    locationStreamMaxLen: readInt(env, "LOCATION_STREAM_MAXLEN", 1_000_000, { min: 1 }),
    kafkaBufferRecords: readInt(env, "KAFKA_BUFFER_RECORDS", 100_000, { min: 1 }),
    kafkaRetryMaxMs: readInt(env, "KAFKA_RETRY_MAX_MS", 5_000, { min: 10 }),
    kafkaSpillMaxRecords: readInt(env, "KAFKA_SPILL_MAX_RECORDS", 1_000_000, { min: 1 }),
    kafkaDrainWaitMs: readInt(env, "KAFKA_DRAIN_WAIT_MS", 5_000, { min: 0, max: 10_000 }),
    kafkaReplayLeaseMs: readInt(env, "KAFKA_REPLAY_LEASE_MS", 10_000, { min: 500 }),
    maxUploadPings: readInt(env, "UPLOAD_MAX_PINGS", 20_000, { min: 1 }),
    // Sent as Reconnect.after_ms; 0 is proto3's unset, read by apps as "your own backoff", and a
    // rider told to wait longer than a minute is a gap on every customer's map.
    drainReconnectMs: readInt(env, "DRAIN_RECONNECT_MS", 1_000, { min: 1, max: 60_000 }),
    transport: loadTransportLimits(env, host),
    ...loadAuthFailureConfig(env, "INGEST_CLIENT_ADDRESS_HEADER"),
  });
}

function loadIntervalPolicy(env: Env, staleRiderMs: number): IntervalPolicy {
  return Object.freeze({
    parkedMs: readIntervalMs(env, "PING_INTERVAL_PARKED_MS", 30_000, 1_000, staleRiderMs),
    movingMs: readIntervalMs(env, "PING_INTERVAL_MOVING_MS", 4_000, 500, staleRiderMs),
    turnMs: readIntervalMs(env, "PING_INTERVAL_TURN_MS", 1_000, 1, staleRiderMs),
    nearStopMs: readIntervalMs(env, "PING_INTERVAL_NEAR_STOP_MS", 2_000, 500, staleRiderMs),
    parkedBelowMps: readInt(env, "PING_PARKED_BELOW_MPS", 1, { min: 0 }),
    sharpTurnDeg: readInt(env, "PING_SHARP_TURN_DEG", 45, { min: 1, max: 180 }),
    nearStopM: readInt(env, "PING_NEAR_STOP_M", 400, { min: 1 }),
  });
}

/**
 * How much later than its interval a rider's next ping may land and keep the
 * rider in the geo set: the reference client's locate() may take 10 s before
 * it gives up on a fix, and the network adds its own. (The sweep's period adds
 * nothing: a sweep removes riders older than RIDER_STALE_MS, never sooner.)
 */
const PING_LATE_HEADROOM_MS = 10_000;

/**
 * An interval sent to the apps as `PingAck.next_interval_ms`. Never 0: that
 * is proto3's unset value, which apps read as "use your own default". At
 * least PING_LATE_HEADROOM_MS below RIDER_STALE_MS, or a rider who follows it
 * leaves the geo set whenever a ping comes a little late.
 */
function readIntervalMs(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  staleRiderMs: number,
): number {
  const value = readInt(env, name, fallback, { min, max: 0xffff_ffff }); // the field is a uint32
  if (value + PING_LATE_HEADROOM_MS > staleRiderMs)
    throw new ConfigError(
      name,
      `must be at most RIDER_STALE_MS (${staleRiderMs}) - ${PING_LATE_HEADROOM_MS}: a rider pinging this rarely would leave the geo set whenever a ping came late`,
      String(value),
    );
  return value;
}

/**
 * How long a drain gives the calls under way (their sessions on h2c, their
 * requests on HTTP/1.1) to end before it cuts them: a ping waits on Redis
 * for one flush timeout at most, but a read with no deadline (a hanging
 * Redis) would hold the drain to its cut.
 */
export const CALLS_CLOSE_GRACE_MS = 2_000;

/**
 * The drain's cut: 15 s, or when longer its own worst case and 5 s of
 * slack. Each step that can wait on a hanging Redis or Kafka gives up by
 * itself, in turn: the calls under way (2 s, the live figures' last report
 * alongside), the last flush (2 s), with KAFKA_BROKERS the location log's
 * close (the replay's stop, KAFKA_DRAIN_WAIT_MS, the spill's budget and the
 * producer's disconnect: writer/drain-waits.ts), and QUIT.
 */
export function ingestDrainTimeoutMs(
  config: Pick<IngestConfig, "kafkaBrokers" | "kafkaDrainWaitMs" | "kafkaBufferRecords">,
): number {
  const worstMs =
    Math.max(CALLS_CLOSE_GRACE_MS, DRAIN_STEP_WAIT_MS) +
    FLUSH_TIMEOUT_MS +
    locationLogCloseWaitMs(config) +
    DRAIN_STEP_WAIT_MS;
  return Math.max(DEFAULT_DRAIN_TIMEOUT_MS, worstMs + 5_000);
}
