import type { Metric, Registry } from "prom-client";

type Labels = Readonly<Record<string, string>>;

/** One label set of a histogram counted elsewhere: a count per bucket (the last one past every bound), and the sum. */
export interface HistogramSeries {
  readonly labels: Labels;
  /** Non-cumulative: counts[i] observations fell in (bounds[i-1], bounds[i]]; counts[bounds.length] above the last. */
  readonly counts: ArrayLike<number>;
  readonly sum: number;
}

/** The index of the bucket `value` falls in: the first bound it does not exceed, else bounds.length. */
export function bucketIndex(bounds: readonly number[], value: number): number {
  let index = 0;
  while (index < bounds.length && value > (bounds[index] as number)) index += 1;
  return index;
}

interface CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "histogram";
  readonly aggregator: "sum";
  get(): Promise<{
    name: string;
    help: string;
    type: "counter" | "histogram";
    aggregator: "sum";
    values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
  }>;
  reset(): void;
}

// prom-client's Registry serializes any registered object with a name, help,
// type and get() (its own metrics are such objects); its type only names its
// four classes, whose hot path (a label hash per call) is what these avoid.
function register(registry: Registry, metric: CollectedMetric): void {
  registry.registerMetric(metric as unknown as Metric);
}

/**
 * A counter whose values are counted elsewhere, in plain fields on a hot
 * path, and read only when scraped. `read` returns every label set's total
 * so far (never decreasing).
 */
export function registerCollectedCounter(
  registry: Registry,
  options: {
    name: string;
    help: string;
    read: () => Iterable<{ labels: Labels; value: number }>;
  },
): void {
  const { name, help, read } = options;
  register(registry, {
    name,
    help,
    type: "counter",
    aggregator: "sum",
    async get() {
      const values = [...read()].map(({ labels, value }) => ({ labels: { ...labels }, value }));
      return { name, help, type: "counter", aggregator: "sum", values };
    },
    reset() {},
  });
}

/**
 * A histogram whose buckets are counted elsewhere (bucketIndex on a hot
 * path, a sampler) and read only when scraped, in the exposition a
 * prom-client Histogram with the same bounds would give.
 */
export function registerCollectedHistogram(
  registry: Registry,
  options: {
    name: string;
    help: string;
    buckets: readonly number[];
    read: () => Iterable<HistogramSeries>;
  },
): void {
  const { name, help, buckets, read } = options;
  register(registry, {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    async get() {
      const values: {
        labels: Record<string, string | number>;
        value: number;
        metricName: string;
      }[] = [];
      for (const { labels, counts, sum } of read()) {
        let cumulative = 0;
        buckets.forEach((bound, index) => {
          cumulative += counts[index] ?? 0;
          values.push({
            labels: { ...labels, le: bound },
            value: cumulative,
            metricName: `${name}_bucket`,
          });
        });
        cumulative += counts[buckets.length] ?? 0;
        values.push(
          { labels: { ...labels, le: "+Inf" }, value: cumulative, metricName: `${name}_bucket` },
          { labels: { ...labels }, value: sum, metricName: `${name}_sum` },
          { labels: { ...labels }, value: cumulative, metricName: `${name}_count` },
        );
      }
      return { name, help, type: "histogram", aggregator: "sum", values };
    },
    reset() {},
  });
}
