// The Redis writes the ingest makes for one ping, as bare commands queued on
// an ioredis pipeline: GEOADD and ZADD on the city's keys, the rider's
// position through store-rider-positions.lua, XADD MAXLEN ~ of its
// LocationRecord. One command each per ping (the ingest itself batches them
// into one call per city and one per slot: that is not the baseline's). Used
// by the raw ceiling (raw-redis-ceiling.ts) and the floor with Redis
// (floor-server.ts), so both write exactly the same.
import type { ChainableCommander } from "ioredis";
import {
  encodeLocationRecord,
  encodeStoredPosition,
  RIDER_POSITION_TTL_S,
} from "../../core/position/position-forms";
import type { RiderPosition } from "../../core/position/rider-position";
import { keys } from "../../core/redis/keys";
import { queueStoreRiderPositions } from "../../core/redis/scripts";

/** The live-age bound the ingest runs with by default: the store script's restart window. */
const LIVE_AGE_MS = 120_000;

export interface RawPing {
  readonly riderId: string;
  readonly city: string;
  readonly lat: number;
  readonly lng: number;
  readonly seq: bigint;
}

/** Queues one ping's four writes on `pipeline`. */
export function queueRawPingWrites(pipeline: ChainableCommander, ping: RawPing): void {
  const { riderId, city, lat, lng, seq } = ping;
  const now = Date.now();
  pipeline.geoadd(keys.cityRiders(city), lng, lat, riderId);
  pipeline.zadd(keys.cityRidersSeen(city), now, riderId);
  const position: RiderPosition = {
    riderId,
    city,
    lat,
    lng,
    accuracyM: 5,
    speedMps: 5,
    headingDeg: 0,
    recordedAtMs: now,
    seq,
    receivedAtMs: now,
  };
  queueStoreRiderPositions(
    pipeline,
    [{ position, json: encodeStoredPosition(position) }],
    LIVE_AGE_MS,
    RIDER_POSITION_TTL_S,
  );
  pipeline.xadd(
    keys.locationLog(city),
    "MAXLEN",
    "~",
    1_000_000,
    "*",
    "rider",
    riderId,
    "record",
    Buffer.from(encodeLocationRecord(position, false)),
  );
}
