import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS } from "../core/observability/metrics";

/** The tracking tier's metrics, registered on the process registry. */
export function createTrackingMetrics(registry: Registry, subscriptions: () => number) {
  const registers = [registry];
  return {
    sockets: new Gauge({ name: "edge_tracking_sockets", help: "Open watcher sockets", registers }),
    ordersWatched: new Gauge({
      name: "edge_tracking_orders_watched",
      help: "Orders with a watcher here",
      registers,
    }),
    subscriptions: new Gauge({
      name: "edge_tracking_subscriptions",
      help: "Redis subscriptions held (one per watched order)",
      registers,
      collect() {
        this.set(subscriptions());
      },
    }),
    framesSent: new Counter({
      name: "edge_tracking_frames_sent_total",
      help: "Frames sent to watchers",
      labelNames: ["type"] as const,
      registers,
    }),
    framesConflated: new Counter({
      name: "edge_tracking_frames_conflated_total",
      help: "Positions replaced by a newer one before a slow socket drained",
      registers,
    }),
    socketsOpened: new Counter({
      name: "edge_tracking_sockets_opened_total",
      help: "Watcher sockets upgraded (those sent on with moved included)",
      registers,
    }),
    socketsClosed: new Counter({
      name: "edge_tracking_sockets_closed_total",
      help: "Sockets closed by the server, by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    clientCloses: new Counter({
      name: "edge_tracking_client_closes_total",
      help: "Sockets closed by the client or the network, by close code (1000, 1001, 1005, 1006 or other)",
      labelNames: ["code"] as const,
      registers,
    }),
    upgradesRefused: new Counter({
      name: "edge_tracking_upgrades_refused_total",
      help: "Watch requests answered with an HTTP error instead of an upgrade, by error code",
      labelNames: ["code"] as const,
      registers,
    }),
    failedAuthRefused: new Counter({
      name: "edge_tracking_failed_auth_refused_total",
      help: 'Watch requests refused with 429 by the failed-authentication limit of their client address (also in edge_tracking_upgrades_refused_total{code="rate_limited"}, beside the per-token watch budget)',
      registers,
    }),
    riderFramesWithheld: new Counter({
      name: "edge_tracking_rider_frames_withheld_total",
      help: "Positions and geofence events not sent: the order does not show that rider now",
      labelNames: ["type"] as const,
      registers,
    }),
    nodeIdClaimLost: new Counter({
      name: "edge_tracking_node_id_claim_lost_total",
      help: "Times this node found its TRACKING_NODE_ID claimed by another node (it stalled past the node TTL) and stopped its heartbeat",
      registers,
    }),
    pingToFrameLag: new Histogram({
      name: "edge_tracking_ping_to_frame_seconds",
      help: "From the ingest receiving a ping to its frame leaving this node",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
  };
}

export type TrackingMetrics = ReturnType<typeof createTrackingMetrics>;
