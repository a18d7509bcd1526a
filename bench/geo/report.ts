import type { NamedChart } from "../support/chart-files";
import type { GeoSearchBenchOptions, GeoSearchRow } from "./run-geo-search-bench";

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

/** The Dispatch candidate search section of bench/RESULTS.md. */
export function geoSearchReport(
  rows: GeoSearchRow[],
  options: Omit<GeoSearchBenchOptions, "progress">,
  command: string,
  machine: string,
): string {
  const base = rows[0];
  return `
Command: \`${command}\` — machine: ${machine}.

One redis-server; ${options.riders} riders spread uniformly over a ${options.spreadM / 1000} km disc
(a London-sized city), then ${options.searches} searches per radius from the centre, exactly as
\`GET /v1/dispatch/candidates\` sends them (\`GEOSEARCH … BYRADIUS r m ASC COUNT ${options.count}
WITHDIST\`). Redis CPU per search is Redis's own \`usec_per_call\` (INFO commandstats), so load on
the machine from elsewhere barely moves it; the ratio is against the smallest radius in the same run.

| radius | riders inside | Redis µs per search | × smallest | searches/s in 10% of a Redis core |
|---:|---:|---:|---:|---:|
${rows
  .map(
    (row) =>
      `| ${fmt(row.radiusM / 1000, 1)} km | ${row.ridersInRadius} | ${fmt(row.redisMicros)} | ${fmt(row.redisMicros / (base?.redisMicros ?? Number.NaN), 1)} | ${fmt(row.searchesPerSecondAtTenthOfACore)} |`,
  )
  .join("\n")}
`;
}

/** Redis time per candidate search against its radius. */
export function geoSearchCharts(rows: GeoSearchRow[]): NamedChart[] {
  return [
    {
      name: "geo-search-cost",
      kind: "line",
      title: "Candidate search: Redis CPU per search against radius",
      x: { label: "radius (m)", log: true },
      y: { label: "Redis µs per search (log scale)", log: true },
      series: [
        {
          name: "GEOSEARCH … COUNT",
          points: rows.map((row) => ({
            x: row.radiusM,
            y: row.redisMicros,
            note: `${row.ridersInRadius} riders inside`,
          })),
        },
      ],
    },
  ];
}
