import { ConfigError, type Env, readBool, readInt, readPort } from "../core/config/env";
import {
  type AuthConfig,
  loadAuthConfig,
  loadKafkaBrokers,
  loadRedisConfig,
  type RedisConfig,
  readBindHost,
  readLiveAgeMs,
  readNodeId,
} from "../core/config/shared-config";
import { DEFAULT_DRAIN_TIMEOUT_MS, DRAIN_STEP_WAIT_MS } from "../core/lifecycle/shutdown";
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

/** What one client may hold of the ingest's transport (README: "Transport limits"). */
export interface TransportLimits {
  /** Open h2c connections per process; at the cap a new one takes the place of the longest idle. */
  readonly maxConnections: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS on each h2c connection. */
  readonly maxStreamsPerConnection: number;
  /** Uploads and unary calls one rider may have open on this process (both ports; StreamPings is one per rider anyway). */
  readonly maxCallsPerRider: number;
  /** A connection must complete the HTTP/2 preface (and its SETTINGS) within this. */
  readonly prefaceTimeoutMs: number;
  /** A connection without an open stream for this long is closed (GOAWAY). */
  readonly idleTimeoutMs: number;
  /** A connection with open streams that sent nothing for this long gets a PING... */
  readonly keepaliveMs: number;
  /** ...and is closed, ending its streams, when the PING is not answered within this. */
  readonly keepaliveTimeoutMs: number;
  /** A started request message (for a unary call: the request) must arrive in full within this. */
  readonly messageTimeoutMs: number;
  /** HTTP/1.1 port: open connections per process; at the cap a new one takes the place of the longest idle. */
  readonly httpMaxConnections: number;
  /** HTTP/1.1 port: a request's line and headers must arrive within this of their first byte. */
  readonly httpHeadTimeoutMs: number;
  /** HTTP/1.1 port: seconds a connection may stay without a request. */
  readonly httpIdleTimeoutS: number;
  /** HTTP/1.1 port: request line and headers larger than this get 431. */
  readonly httpMaxHeaderBytes: number;
}

/**
 * Bun's HTTP/1.1 parser limit is raised to this (from its 16 KiB default), so
 * request heads up to it reach the handler and get the JSON 431; past it Bun
 * answers a bare 431 before any JavaScript runs.
 */
export const PARSER_HEADER_LIMIT_BYTES = 64 * 1024;
/** File descriptors left to Redis, Kafka and logs beside the two ports' connections. */
const RESERVED_FILE_DESCRIPTORS = 128;

export interface IngestConfig {
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

/** Facts about the host the configuration is checked against (read by main, not here). */
export interface HostLimits {
  /** The process's soft limit on open files (`ulimit -n`), when known. */
  readonly openFileLimit?: number;
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

function loadTransportLimits(env: Env, host: HostLimits): TransportLimits {
  const maxConnections = readMaxConnections(env, host.openFileLimit);
  return Object.freeze({
    maxConnections,
    maxStreamsPerConnection: readInt(env, "INGEST_MAX_STREAMS_PER_CONNECTION", 4, {
      min: 1,
      max: 1_000,
    }),
    maxCallsPerRider: readInt(env, "INGEST_MAX_CALLS_PER_RIDER", 2, { min: 1, max: 100 }),
    prefaceTimeoutMs: readInt(env, "INGEST_PREFACE_TIMEOUT_MS", 5_000, { min: 50 }),
    idleTimeoutMs: readInt(env, "INGEST_IDLE_TIMEOUT_MS", 30_000, { min: 50 }),
    keepaliveMs: readInt(env, "INGEST_KEEPALIVE_MS", 30_000, { min: 50 }),
    keepaliveTimeoutMs: readInt(env, "INGEST_KEEPALIVE_TIMEOUT_MS", 10_000, { min: 50 }),
    messageTimeoutMs: readInt(env, "INGEST_MESSAGE_TIMEOUT_MS", 10_000, { min: 50 }),
    httpMaxConnections: readHttpMaxConnections(env, host.openFileLimit, maxConnections),
    // Bun's HTTP server closes a connection whose first request head is not in 10-14 s
    // after the front connected it (its own timer, from the client's first byte at the
    // soonest): the front's deadline, checked by a sweep every second, must fire first
    // (8 s + at most one sweep + 1 s of margin for a busy event loop), or the cut is Bun's
    // and not counted as http_head_timeout.
    httpHeadTimeoutMs: readInt(env, "INGEST_HTTP_HEAD_TIMEOUT_MS", 8_000, {
      min: 50,
      max: 8_000,
    }),
    httpIdleTimeoutS: readInt(env, "INGEST_HTTP_IDLE_TIMEOUT_S", 10, { min: 1, max: 255 }),
    httpMaxHeaderBytes: readInt(env, "INGEST_HTTP_MAX_HEADER_BYTES", 8 * 1024, {
      min: 1_024,
      max: PARSER_HEADER_LIMIT_BYTES,
    }),
  });
}

/** Descriptors one HTTP/1.1 connection holds: the client's, and both ends of the pipe to the HTTP server. */
const HTTP_CONNECTION_FILES = 3;

/**
 * The HTTP/1.1 port's cap: by default a sixteenth of the open-file limit (at
 * most 1,000), and never more than what the h2c cap leaves beside the
 * reserve, so that together the two caps keep the descriptor limit from
 * ever deciding (a default squeezed by a large h2c cap goes down to one).
 */
function readHttpMaxConnections(
  env: Env,
  openFileLimit: number | undefined,
  h2cMaxConnections: number,
): number {
  const name = "INGEST_HTTP_MAX_CONNECTIONS";
  if (openFileLimit === undefined) return readInt(env, name, 1_000, { min: 1 });
  const room = Math.floor(
    (openFileLimit - h2cMaxConnections - RESERVED_FILE_DESCRIPTORS) / HTTP_CONNECTION_FILES,
  );
  const fallback = Math.max(1, Math.min(1_000, Math.floor(openFileLimit / 16), room));
  const value = readInt(env, name, fallback, { min: 1 });
  if (value > Math.max(1, room)) {
    throw new ConfigError(
      name,
      `at ${HTTP_CONNECTION_FILES} open files per connection, must leave ${RESERVED_FILE_DESCRIPTORS} of the process's ${openFileLimit} (ulimit -n) beside the h2c port's ${h2cMaxConnections}`,
      String(value),
    );
  }
  return value;
}

/**
 * The connection cap must sit well below the file-descriptor limit, or the
 * limit (not the cap) decides who is refused: by default half of it (at most
 * 10,000); a value that leaves too little for everything else stops the start.
 */
function readMaxConnections(env: Env, openFileLimit: number | undefined): number {
  const name = "INGEST_MAX_CONNECTIONS";
  if (openFileLimit === undefined) return readInt(env, name, 10_000, { min: 1 });
  const fallback = Math.max(1, Math.min(10_000, Math.floor(openFileLimit / 2)));
  const value = readInt(env, name, fallback, { min: 1 });
  if (value > openFileLimit - RESERVED_FILE_DESCRIPTORS) {
    throw new ConfigError(
      name,
      `must leave ${RESERVED_FILE_DESCRIPTORS} of the process's ${openFileLimit} open files (ulimit -n) for Redis, Kafka and logs`,
      String(value),
    );
  }
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
