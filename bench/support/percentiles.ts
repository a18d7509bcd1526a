/** Keeps a bounded uniform sample of values (reservoir) for percentiles of long runs. */
export class Reservoir {
  readonly #values: number[] = [];
  #seen = 0;
  constructor(readonly size = 100_000) {}

  add(value: number): void {
    this.#seen += 1;
    if (this.#values.length < this.size) {
      this.#values.push(value);
      return;
    }
    const slot = Math.floor(Math.random() * this.#seen);
    if (slot < this.size) this.#values[slot] = value;
  }

  percentile(p: number): number {
    if (this.#values.length === 0) return Number.NaN;
    const sorted = [...this.#values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
  }
}

/**
 * A percentile from two scrapes of a Prometheus histogram (cumulative
 * buckets `le` → count), linearly interpolated inside the bucket.
 */
export function histogramPercentile(
  before: Map<number, number>,
  after: Map<number, number>,
  p: number,
): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total =
    (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0);
  if (total <= 0) return Number.NaN;
  const rank = (p / 100) * total;
  let lower = 0;
  let below = 0;
  for (const bound of bounds) {
    const count = (after.get(bound) ?? 0) - (before.get(bound) ?? 0);
    if (count >= rank) {
      if (!Number.isFinite(bound)) return lower;
      return lower + ((bound - lower) * (rank - below)) / Math.max(count - below, 1);
    }
    lower = bound;
    below = count;
  }
  return lower;
}

/** Parses `name_bucket{le="x",...} n` lines of a Prometheus text scrape. */
export function parseHistogram(metricsText: string, name: string): Map<number, number> {
  const buckets = new Map<number, number>();
  const pattern = new RegExp(
    `^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\d+(?:\\.\\d+)?)$`,
    "gm",
  );
  for (const match of metricsText.matchAll(pattern)) {
    const bound = match[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(match[1]);
    buckets.set(bound, Number(match[2]));
  }
  return buckets;
}
