import type { Logger } from "pino";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS } from "../core/observability/metrics";
import { DropReason } from "../proto/gen/delivery/tracking/v1/ingest_pb";

export const DROP_REASON_LABELS: Record<DropReason, string> = {
  [DropReason.UNSPECIFIED]: "unspecified",
  [DropReason.INVALID_COORDINATES]: "invalid_coordinates",
  [DropReason.FUTURE_TIMESTAMP]: "future_timestamp",
  [DropReason.STALE_TIMESTAMP]: "stale_timestamp",
  [DropReason.OUT_OF_ORDER]: "out_of_order",
  [DropReason.TELEPORT]: "teleport",
  [DropReason.POOR_ACCURACY]: "poor_accuracy",
  [DropReason.UNAVAILABLE]: "unavailable",
  [DropReason.OVERLOADED]: "overloaded",
};

/** Every transport limit that can fire, as the `limit` label of edge_ingest_limit_hits_total. */
export const TRANSPORT_LIMITS = [
  "preface_timeout",
  "not_http2",
  "idle_timeout",
  "keepalive_timeout",
  "connection_evicted",
  "connection_refused",
  "rider_calls",
  "failed_auth",
  "message_timeout",
  "message_too_large",
  "malformed_message",
  "headers_too_large",
  "body_too_large",
  "http_connection_evicted",
  "http_connection_refused",
  "http_head_timeout",
  "http_idle_timeout",
  "http_relay_backlog",
] as const;

export type TransportLimit = (typeof TRANSPORT_LIMITS)[number];

/** The ingest's metrics, registered on the process registry. */
export function createIngestMetrics(registry: Registry) {
  const registers = [registry];
  return {
    pingsAccepted: new Counter({
      name: "edge_ingest_pings_accepted_total",
      help: "Pings that passed the checks and reached Redis",
      labelNames: ["kind"] as const,
      registers,
    }),
    pingsDropped: new Counter({
      name: "edge_ingest_pings_dropped_total",
      help: "Pings not accepted, by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    streams: new Gauge({
      name: "edge_ingest_streams",
      help: "Open rider streams",
      registers,
    }),
    streamsSuperseded: new Counter({
      name: "edge_ingest_streams_superseded_total",
      help: "StreamPings calls ended because a newer one of the same rider opened (here or on another node)",
      registers,
    }),
    connectionsOpened: new Counter({
      name: "edge_ingest_connections_opened_total",
      help: "h2c connections accepted (those the cap refused are limit hits)",
      registers,
    }),
    connections: new Gauge({
      name: "edge_ingest_connections",
      help: "Open h2c connections",
      registers,
    }),
    httpConnections: new Gauge({
      name: "edge_ingest_http_connections",
      help: "Open HTTP/1.1 connections (INGEST_HTTP_MAX_CONNECTIONS caps them)",
      registers,
    }),
    limitHits: new Counter({
      name: "edge_ingest_limit_hits_total",
      help: "Connections, streams and requests stopped by a transport limit, by limit",
      labelNames: ["limit"] as const,
      registers,
    }),
    writeLatency: new Histogram({
      name: "edge_ingest_write_latency_seconds",
      help: "From a ping's receipt to its Redis pipeline completing",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    batchPings: new Histogram({
      name: "edge_ingest_batch_pings",
      help: "Pings per flush",
      buckets: [1, 4, 16, 64, 256, 1024],
      registers,
    }),
    geofenceCrossings: new Counter({
      name: "edge_ingest_geofence_crossings_total",
      help: "Geofence crossings seen, by fence and what record-geofence.lua made of them",
      labelNames: ["fence", "outcome"] as const,
      registers,
    }),
    offersDelivered: new Counter({
      name: "edge_ingest_offers_delivered_total",
      help: "Ride offers pushed down a rider stream",
      registers,
    }),
    logBuffered: new Gauge({
      name: "edge_ingest_location_log_buffered",
      help: "Location records waiting for the location log",
      registers,
    }),
    logSent: new Counter({
      name: "edge_ingest_location_log_sent_total",
      help: "Location records acknowledged by the location log",
      registers,
    }),
    logSpilled: new Counter({
      name: "edge_ingest_location_log_spilled_total",
      help: "Location records Kafka could not take kept in Redis for replay, by reason (overflow: the buffer was full; shutdown: Kafka away at drain)",
      labelNames: ["reason"] as const,
      registers,
    }),
    logReplayed: new Counter({
      name: "edge_ingest_location_log_replayed_total",
      help: "Spilled location records this node replayed to Kafka (acknowledged there)",
      registers,
    }),
    logLost: new Counter({
      name: "edge_ingest_location_log_lost_total",
      help: "Acked location records that could not be kept, by reason (spill_full: the city's spill at its cap; redis_unavailable: the spill write failed)",
      labelNames: ["reason"] as const,
      registers,
    }),
    logSpillBacklog: new Gauge({
      name: "edge_ingest_location_log_spill_backlog",
      help: "Spilled location records waiting for replay, over every city (as this node last counted them)",
      registers,
    }),
    logFailures: new Counter({
      name: "edge_ingest_location_log_failures_total",
      help: "Failed sends to the location log (retried)",
      registers,
    }),
    ridersPruned: new Counter({
      name: "edge_ingest_riders_pruned_total",
      help: "Stale riders removed from geo sets",
      registers,
    }),
  };
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;

/** A transport limit fired: what hit it (peer, rider, method, sizes), for the debug line. */
export type LimitHit = (limit: TransportLimit, details?: Record<string, unknown>) => void;

/** Counts each limit hit in edge_ingest_limit_hits_total and logs it at debug with its details. */
export function limitHitReporter(metrics: IngestMetrics, logger: Logger): LimitHit {
  return (limit, details) => {
    metrics.limitHits.inc({ limit });
    logger.debug({ limit, ...details }, "transport limit hit");
  };
}
