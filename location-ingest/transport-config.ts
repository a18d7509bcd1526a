// The ingest's transport limits: what one client may hold of its two ports
// (README: "Transport limits"), checked against the process's open-file
// limit so that the caps, never the descriptor limit, decide who is refused.
import { ConfigError, type Env, readInt } from "../core/config/env";

/** Facts about the host the configuration is checked against (read by main, not here). */
export interface HostLimits {
  /** The process's soft limit on open files (`ulimit -n`), when known. */
  readonly openFileLimit?: number;
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

/** Reads and checks the transport limits; throws ConfigError naming a bad variable. */
export function loadTransportLimits(env: Env, host: HostLimits): TransportLimits {
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
