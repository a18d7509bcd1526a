/**
 * The one place that builds Redis keys and channel names. Each name carries
 * a hash tag so that everything a Lua script or a pipeline group touches for
 * one city, rider or order lives on one Redis Cluster slot: `{city}` for geo,
 * dispatch and location-log keys, `{rider}` for a rider's own keys, and the
 * order's partition `{p<n>}` for its record, channel and outbox stream.
 * Callers pass ids already checked by `isKeyPart`, so no id can smuggle in a
 * brace and move a key's slot.
 */

export const KEY_PART = /^[A-Za-z0-9._:-]{1,64}$/;

export function isKeyPart(value: string): boolean {
  return KEY_PART.test(value);
}

/**
 * How many partitions orders are spread over. Part of the keyspace, not a
 * setting: every tier builds order keys from it, so it is the same in all of
 * them by construction (a variable would let one tier read and write orders
 * no other tier can find), and changing it renames every order key, which
 * is a data migration (docs/contract.md). 64 spreads orders over the masters
 * of any cluster this edge runs on, and lets 64 gateways relay at once,
 * while an idle relay pass costs 64 reads.
 */
export const ORDER_PARTITIONS = 64;

/** The order's partition: FNV-1a (32 bit) of the id, modulo ORDER_PARTITIONS. */
export function orderPartition(orderId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < orderId.length; i++) {
    hash ^= orderId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % ORDER_PARTITIONS;
}

const outboxStream = (partition: number) => `outbox:{p${partition}}`;
const partitionTag = (orderId: string) => `{p${orderPartition(orderId)}}`;

export const keys = {
  /** SET of the cities that have (had) riders: what the stale-rider sweep walks. */
  cities: () => "geo:cities",
  /** GEO set of the city's riders that have been seen recently. */
  cityRiders: (city: string) => `geo:{${city}}:riders`,
  /** ZSET rider → last-seen ms, drives stale-rider pruning and candidate freshness. */
  cityRidersSeen: (city: string) => `geo:{${city}}:seen`,
  /** STRING: the rider's last accepted ping, a LocationRecord in proto3 JSON (core/position/position-forms.ts). */
  riderPosition: (rider: string) => `rider:{${rider}}:pos`,
  /** SET of the rider's active order ids. */
  riderOrders: (rider: string) => `rider:{${rider}}:orders`,
  /** Channel: offers and order changes for the ingest node holding the rider's stream. */
  riderInbox: (rider: string) => `rider:{${rider}}:inbox`,
  /** STRING counter: the generation of the rider's newest StreamPings (the live one holds the highest). */
  riderStream: (rider: string) => `rider:{${rider}}:stream`,
  /** STRING: when the StreamPings holding `riderStream`'s generation opened (ms, Redis's clock). */
  riderStreamOpened: (rider: string) => `rider:{${rider}}:stream-opened`,
  /** STRING: the id of the StreamPings holding `riderStream`'s generation (LiveStream.id). */
  riderStreamHolder: (rider: string) => `rider:{${rider}}:stream-holder`,
  /** HASH: an order's tracking record, on its partition's slot. */
  order: (order: string) => `order:${partitionTag(order)}:${order}`,
  /** STREAM: the outbox of the order's partition (every order of it), relayed to Kafka `order-events`. */
  orderOutbox: (order: string) => outboxStream(orderPartition(order)),
  /** STREAM: one partition's outbox, by partition number (what the relay reads). */
  outboxPartition: (partition: number) => outboxStream(partition),
  /** STRING `<node id> <instance token>`: the gateway process relaying one partition's outbox (a lease with a TTL). */
  outboxLease: (partition: number) => `outbox-lease:{p${partition}}`,
  /** ZSET gateway node id → last heartbeat ms: the relays the partitions are shared among. */
  outboxRelays: () => "outbox-relay:nodes",
  /** Channel: an order's tracking events (TrackingEvents in proto3 JSON), on its record's slot. */
  orderTrack: (order: string) => `track:${partitionTag(order)}:${order}`,
  offerForRider: (city: string, rider: string) => `offer:{${city}}:rider:${rider}`,
  offerForOrder: (city: string, order: string) => `offer:{${city}}:order:${order}`,
  /**
   * STRING `<rider> <token>`, a short TTL: that accept took the order's offer and is assigning it;
   * its retry meanwhile is told to wait (503), not that the offer is gone.
   */
  offerAccepting: (city: string, order: string) => `offer:{${city}}:accepting:${order}`,
  fence: (city: string) => `fence:{${city}}`,
  /** ZSET tracking node id → last heartbeat ms: the live members of the hash ring. */
  trackingNodes: () => "tracking:nodes",
  /** HASH tracking node id → its public WebSocket URL. */
  trackingNodeUrls: () => "tracking:node-urls",
  /** STRING `<instance token> <url>`: the running node that holds a tracking node id (a lease renewed with its heartbeat). */
  trackingNodeClaim: (node: string) => `tracking:node-claim:${node}`,
  /** HASH `<tier>:<node id>` → that node's live figures (JSON with `at`): what the live map totals. */
  nodeStats: () => "edge:node-stats",
  /** HASH: an idempotent request's claim and then its stored response. */
  idempotency: (customer: string, key: string) => `idem:{${customer}}:${key}`,
  /** HASH `at` (ms), `body`: a restaurant search for one geohash-5 cell and normalised query (fresh, then stale-if-error). */
  searchCache: (geohash5: string, queryHash: string) => `search:{${geohash5}}:${queryHash}`,
  /** STRING counter: one identity's requests in one rate-limit window. */
  rateLimit: (identity: string, windowStart: number) => `rl:{${identity}}:${windowStart}`,
  /** Capped STREAM: the location log when no Kafka is configured. */
  locationLog: (city: string) => `locations:{${city}}`,
  /** Capped STREAM (fields rider, at, record): acked location records Kafka could not take yet, replayed to it. */
  locationSpill: (city: string) => `location-spill:{${city}}`,
  /** STRING `<node id> <instance token>`: the ingest process replaying the city's spill (a lease with a TTL, hold-lease.lua). */
  locationSpillLease: (city: string) => `location-spill-lease:{${city}}`,
} as const;
