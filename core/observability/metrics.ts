import { Registry } from "prom-client";
import { registerProcessMetrics } from "./process-metrics";

/**
 * One registry per process, with the process metrics (`edge_process_*`).
 * Metric names follow `edge_<tier>_<what>_<unit|total>` (what every tier shares:
 * `edge_process_*`, the token verifier's `edge_auth_*`); label values come
 * from fixed lists, never from ids.
 */
export function createMetricsRegistry(tier: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ tier });
  registerProcessMetrics(registry);
  return registry;
}

/** Buckets for sub-second latencies, in seconds (0.25 ms .. 2.5 s). */
export const LATENCY_BUCKETS = [
  0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
