import { readFileSync } from "node:fs";
import type { ChainableCommander, Cluster, Redis } from "ioredis";
import type { RiderPosition } from "../position/rider-position";
import { keys } from "./keys";

/**
 * Every Lua script, registered once per client with ioredis `defineCommand`
 * (EVALSHA, falling back to EVAL after a Redis restart flushed the script
 * cache). The scripts never build keys: callers pass them from `keys.ts`.
 */
const SCRIPTS = {
  pruneStaleRiders: { file: "prune-stale-riders.lua", keys: 2 },
  recordPositions: { file: "record-positions.lua", keys: 3 },
  /** Takes its key count as the first argument (one key per position). */
  storeRiderPositions: { file: "store-rider-positions.lua", keys: null },
  takeRateLimit: { file: "take-rate-limit.lua", keys: 1 },
  createOffer: { file: "create-offer.lua", keys: 3 },
  takeOffer: { file: "take-offer.lua", keys: 3 },
  assignRider: { file: "assign-rider.lua", keys: 2 },
  confirmAcceptedOffer: { file: "confirm-accepted-offer.lua", keys: 1 },
  beginIdempotent: { file: "begin-idempotent.lua", keys: 1 },
  renewIdempotent: { file: "renew-idempotent.lua", keys: 1 },
  finishIdempotent: { file: "finish-idempotent.lua", keys: 1 },
  createOrderRecord: { file: "create-order-record.lua", keys: 1 },
  transitionOrder: { file: "transition-order.lua", keys: 2 },
  recordGeofence: { file: "record-geofence.lua", keys: 2 },
  holdLease: { file: "hold-lease.lua", keys: 1 },
  releaseLease: { file: "release-lease.lua", keys: 1 },
  spillLocations: { file: "spill-locations.lua", keys: 1 },
  ackSpilledLocations: { file: "ack-spilled-locations.lua", keys: 2 },
  drawStreamGeneration: { file: "draw-stream-generation.lua", keys: 3 },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = string | number | Buffer;

/** A client with the scripts above as typed commands. */
export type ScriptCommands = {
  [name in ScriptName]: (...args: ScriptArg[]) => Promise<unknown>;
};

export type RedisClient = (Redis | Cluster) & ScriptCommands;

/** Either a client (the call returns a promise) or a pipeline (the call queues): where a script can be called. */
export type ScriptCaller = { [name in ScriptName]: (...args: ScriptArg[]) => unknown };

/** A pipeline of a client with the scripts registered: they can be queued like any command. */
export type ScriptPipeline = ChainableCommander & {
  [name in ScriptName]: (...args: ScriptArg[]) => ScriptPipeline;
};

let sources: Map<ScriptName, string> | undefined;

function scriptSources(): Map<ScriptName, string> {
  sources ??= new Map(
    (Object.keys(SCRIPTS) as ScriptName[]).map((name) => [
      name,
      readFileSync(new URL(`./lua/${SCRIPTS[name].file}`, import.meta.url), "utf8"),
    ]),
  );
  return sources;
}

export function registerScripts(client: Redis | Cluster): RedisClient {
  for (const [name, lua] of scriptSources()) {
    const { keys: numberOfKeys } = SCRIPTS[name];
    client.defineCommand(name, numberOfKeys === null ? { lua } : { lua, numberOfKeys });
  }
  return client as RedisClient;
}

/** Prunes up to `batch` riders of one city not seen since `cutoffMs`; returns how many left. */
export async function pruneStaleRiders(
  client: RedisClient,
  city: string,
  cutoffMs: number,
  batch: number,
): Promise<number> {
  const pruned = await client.pruneStaleRiders(
    keys.cityRiders(city),
    keys.cityRidersSeen(city),
    cutoffMs,
    batch,
  );
  return Number(pruned);
}

/** One position for record-positions.lua: where it goes and its log record. */
export interface PositionEntry {
  readonly position: RiderPosition;
  /** The rider's newest position (geo set and last-seen), or backlog history only. */
  readonly current: boolean;
  /** LocationRecord bytes for the stream log (ignored when `streamMaxLen` is 0). */
  readonly record: Uint8Array;
}

/** A ping's fixed part in record-positions.lua's packed argument: two lengths, current, three f64. */
const PACKED_PING_FIXED_BYTES = 4 + 1 + 3 * 8 + 4;

/**
 * Queues one city's pings of a flush on `pipeline` (the city's shard); see
 * the script's header. The pings travel packed in one buffer: ioredis turns
 * every argument into strings and copies of its own, which cost more than
 * the script's work (bench/RESULTS.md, "where a ping's bytes go").
 */
export function queueRecordPositions(
  pipeline: ChainableCommander,
  city: string,
  entries: readonly PositionEntry[],
  streamMaxLen: number,
): void {
  let size = 0;
  for (const { position, record } of entries) {
    // An upper bound of the id's UTF-8 length (ids are ASCII; no string scan needed).
    size += PACKED_PING_FIXED_BYTES + 3 * position.riderId.length;
    if (streamMaxLen > 0) size += record.length;
  }
  const packed = Buffer.allocUnsafe(size);
  let at = 0;
  for (const { position, current, record } of entries) {
    const idBytes = packed.write(position.riderId, at + 4);
    packed.writeUInt32BE(idBytes, at);
    at += 4 + idBytes;
    packed[at] = current ? 1 : 0;
    at = packed.writeDoubleBE(position.lng, at + 1);
    at = packed.writeDoubleBE(position.lat, at);
    at = packed.writeDoubleBE(position.receivedAtMs, at);
    const logged = streamMaxLen > 0 ? record.length : 0;
    at = packed.writeUInt32BE(logged, at);
    if (logged > 0) packed.set(record, at);
    at += logged;
  }
  (pipeline as ScriptPipeline).recordPositions(
    keys.cityRiders(city),
    keys.cityRidersSeen(city),
    keys.locationLog(city),
    streamMaxLen,
    packed.subarray(0, at),
  );
}

/** One position for store-rider-positions.lua: whose, its place in the rider's order, its stored form. */
export interface StoredPositionEntry {
  readonly position: {
    readonly riderId: string;
    readonly seq: bigint;
    readonly receivedAtMs: number;
  };
  /** encodeStoredPosition(position). */
  readonly json: string;
}

/**
 * Queues one store-rider-positions.lua call on `pipeline` for positions
 * whose keys share a slot (any, on a standalone server): each stored
 * unless the stored position follows it in the rider's order, in the order
 * given. Its reply is an array with 1 (stored) or 0 (kept the stored one)
 * per entry.
 */
export function queueStoreRiderPositions(
  pipeline: ChainableCommander,
  entries: readonly StoredPositionEntry[],
  restartAfterMs: number,
  ttlSeconds: number,
): void {
  const count = entries.length;
  const args: ScriptArg[] = new Array(1 + 4 * count + 2);
  args[0] = count;
  args[count + 1] = restartAfterMs;
  args[count + 2] = ttlSeconds;
  for (let i = 0; i < count; i += 1) {
    const { position, json } = entries[i] as StoredPositionEntry;
    args[i + 1] = keys.riderPosition(position.riderId);
    const at = count + 3 + 3 * i;
    args[at] = position.seq.toString();
    args[at + 1] = position.receivedAtMs;
    args[at + 2] = json;
  }
  (pipeline as ScriptPipeline).storeRiderPositions(...args);
}

export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** When the current window ends (ms since epoch). */
  readonly resetAtMs: number;
}

/** Counts one request for `identity` in the fixed window containing `nowMs`. */
export async function takeRateLimit(
  client: RedisClient,
  identity: string,
  limit: number,
  windowMs: number,
  nowMs: number,
): Promise<RateLimitDecision> {
  const windowStart = nowMs - (nowMs % windowMs);
  const [allowed, count] = (await client.takeRateLimit(
    keys.rateLimit(identity, windowStart),
    limit,
    windowMs,
  )) as [number, number];
  return {
    allowed: allowed === 1,
    limit,
    remaining: Math.max(0, limit - count),
    resetAtMs: windowStart + windowMs,
  };
}
