/**
 * The one place that builds Redis keys and channel names. Each name carries
 * a hash tag so that everything a Lua script or a pipeline group touches for
 * one city, rider or order lives on one Redis Cluster slot: `{city}` for geo,
 * dispatch and location-log keys, `{rider}` for a rider's own keys, `{order}`
 * for an order's record and channel. Callers pass ids already checked by
 * `assertKeyPart`, so no id can smuggle in a brace and move a key's slot.
 */

const KEY_PART = /^[A-Za-z0-9._:-]{1,64}$/;

export function isKeyPart(value: string): boolean {
  return KEY_PART.test(value);
}

export const keys = {
  /** SET of the cities that have (had) riders: what the stale-rider sweep walks. */
  cities: () => "geo:cities",
  /** GEO set of the city's riders that have been seen recently. */
  cityRiders: (city: string) => `geo:{${city}}:riders`,
  /** ZSET rider → last-seen ms, drives stale-rider pruning and candidate freshness. */
  cityRidersSeen: (city: string) => `geo:{${city}}:seen`,
  /** HASH of the rider's last accepted ping (lat, lng, seq, recordedAt, ...). */
  riderPosition: (rider: string) => `rider:{${rider}}:pos`,
  /** SET of the rider's active order ids. */
  riderOrders: (rider: string) => `rider:{${rider}}:orders`,
  /** Channel: offers and order changes for the ingest node holding the rider's stream. */
  riderInbox: (rider: string) => `rider:{${rider}}:inbox`,
  /** HASH: an order's tracking record. */
  order: (order: string) => `order:{${order}}`,
  /** STREAM: the order's status changes waiting for the relay to Kafka `order-events` (on the order's slot). */
  orderOutbox: (order: string) => `outbox:{${order}}`,
  /** SCAN pattern matching every order's outbox. */
  orderOutboxPattern: () => "outbox:*",
  /** STRING: which gateway node relays outboxes right now (one at a time, with a TTL). */
  outboxRelayLock: () => "outbox-relay:lock",
  /** Channel: an order's tracking events (JSON frames of tracking.v1.json). */
  orderTrack: (order: string) => `track:{${order}}`,
  offerForRider: (city: string, rider: string) => `offer:{${city}}:rider:${rider}`,
  offerForOrder: (city: string, order: string) => `offer:{${city}}:order:${order}`,
  fence: (city: string) => `fence:{${city}}`,
  /** ZSET tracking node id → last heartbeat ms: the live members of the hash ring. */
  trackingNodes: () => "tracking:nodes",
  /** HASH tracking node id → its public WebSocket URL. */
  trackingNodeUrls: () => "tracking:node-urls",
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
} as const;
