import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import {
  bucketIndex,
  type HistogramSeries,
  registerCollectedCounter,
  registerCollectedHistogram,
} from "../core/observability/collected-metrics";
import { LATENCY_BUCKETS } from "../core/observability/metrics";

/** Methods counted by name; any other is counted as `other` (a client picks the method). */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The `state` label of edge_gateway_upstream_breaker_state. */
export type BreakerState = "closed" | "open" | "half_open";
const BREAKER_STATES: readonly BreakerState[] = ["closed", "open", "half_open"];

/** What became of a request carrying an Idempotency-Key. */
export type IdempotencyOutcome = "claimed" | "replayed" | "mismatch" | "in_flight";

/** A route and method's requests: a count per status and the duration buckets. */
interface RequestSeries {
  readonly labels: { method: string; route: string };
  readonly statuses: Map<number, number>;
  readonly counts: Float64Array;
  sum: number;
}

/**
 * Requests by route template (`/v1/orders/{id}/status`, or `unmatched`),
 * method and status, and their durations: RED metrics. Recording is a
 * two-level Map lookup and a bucket search, read only when scraped; every
 * label value is bounded (routes are the app's, methods a fixed list,
 * statuses three digits).
 */
function requestMetrics(registry: Registry) {
  const byRoute = new Map<string, Map<string, RequestSeries>>();
  const all = function* () {
    for (const methods of byRoute.values()) yield* methods.values();
  };
  registerCollectedCounter(registry, {
    name: "edge_gateway_requests_total",
    help: "HTTP requests answered, by method, route template and status",
    *read() {
      for (const { labels, statuses } of all())
        for (const [status, value] of statuses)
          yield { labels: { ...labels, status: String(status) }, value };
    },
  });
  registerCollectedHistogram(registry, {
    name: "edge_gateway_request_duration_seconds",
    help: "From a request reaching the gateway's app to its answer, by method and route template",
    buckets: LATENCY_BUCKETS,
    read: all as () => Iterable<HistogramSeries>,
  });
  return function recordRequest(
    method: string,
    route: string,
    status: number,
    seconds: number,
  ): void {
    const label = METHODS.has(method) ? method : "other";
    let methods = byRoute.get(route);
    if (!methods) {
      methods = new Map();
      byRoute.set(route, methods);
    }
    let series = methods.get(label);
    if (!series) {
      series = {
        labels: { method: label, route },
        statuses: new Map(),
        counts: new Float64Array(LATENCY_BUCKETS.length + 1),
        sum: 0,
      };
      methods.set(label, series);
    }
    series.statuses.set(status, (series.statuses.get(status) ?? 0) + 1);
    const bucket = bucketIndex(LATENCY_BUCKETS, seconds);
    series.counts[bucket] = (series.counts[bucket] ?? 0) + 1;
    series.sum += seconds;
  };
}

/** The gateway's own metrics (the outbox relay registers its own), on the process registry. */
export function createGatewayMetrics(registry: Registry) {
  const registers = [registry];
  const breakerState = new Gauge({
    name: "edge_gateway_upstream_breaker_state",
    help: "Each upstream's circuit breaker: 1 for the state it is in, 0 for the others",
    labelNames: ["service", "state"] as const,
    registers,
  });
  return {
    recordRequest: requestMetrics(registry),
    rateLimited: new Counter({
      name: "edge_gateway_rate_limited_total",
      help: "Requests refused with 429 by a limit: requests per identity, or failed authentications per client address",
      labelNames: ["limit"] as const,
      registers,
    }),
    rateLimitUnchecked: new Counter({
      name: "edge_gateway_rate_limit_unchecked_total",
      help: "Requests let through uncounted because their rate-limit counter's Redis shard was unreachable",
      registers,
    }),
    idempotency: new Counter({
      name: "edge_gateway_idempotent_requests_total",
      help: "Order placements by what their Idempotency-Key found: claimed (first), replayed, mismatch (another body, 422), in_flight (409)",
      labelNames: ["outcome"] as const,
      registers,
    }),
    upstreamCalls: new Counter({
      name: "edge_gateway_upstream_calls_total",
      help: "Calls to an upstream service, including those its open breaker refused (failures: edge_gateway_upstream_errors_total)",
      labelNames: ["service"] as const,
      registers,
    }),
    upstreamErrors: new Counter({
      name: "edge_gateway_upstream_errors_total",
      help: "Upstream calls that failed, by service and the code the client got",
      labelNames: ["service", "code"] as const,
      registers,
    }),
    upstreamDuration: new Histogram({
      name: "edge_gateway_upstream_call_duration_seconds",
      help: "Upstream calls from start to the whole answer read (or the failure), by service",
      labelNames: ["service"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    breakerOpened: new Counter({
      name: "edge_gateway_upstream_breaker_opened_total",
      help: "Times an upstream's circuit breaker opened",
      labelNames: ["service"] as const,
      registers,
    }),
    /** Sets the one-hot breaker state of `service`. */
    setBreakerState(service: string, state: BreakerState): void {
      for (const each of BREAKER_STATES)
        breakerState.set({ service, state: each }, each === state ? 1 : 0);
    },
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
