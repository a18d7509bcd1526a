// The README's configuration tables give each variable's default, and its
// drain section the cuts those defaults make: both must be what the loaders
// do. A default is checked by loading the tier with the documented value set
// and without it, under each of CONFIG_BASES (HS256 with one Redis; a JWKS,
// a cluster and Kafka) that reads it: the two configs must be equal.
import { describe, expect, test } from "bun:test";
import type { Env } from "../../core/config/env";
import { gatewayDrainTimeoutMs, loadGatewayConfig } from "../../gateway/config";
import { ingestDrainTimeoutMs, loadIngestConfig } from "../../location-ingest/config";
import { loadTrackingConfig, trackingDrainTimeoutMs } from "../../tracking/config";
import { CONFIG_BASES, readDocs, readRepoFile, tableRows } from "./repo-docs";

const readme = await readRepoFile("README.md");
const [BASE, JWKS_CLUSTER_KAFKA] = CONFIG_BASES;
const KAFKA = { KAFKA_BROKERS: JWKS_CLUSTER_KAFKA.KAFKA_BROKERS };

const LOADERS: Record<string, (env: Env) => object> = {
  ingest: (env) => loadIngestConfig(env),
  gateway: (env) => loadGatewayConfig(env),
  tracking: (env) => loadTrackingConfig(env),
};

/** The variables each tier's loader reads, each with the CONFIG_BASES it reads it under. */
const readBy = Object.fromEntries(
  Object.entries(LOADERS).map(([tier, load]) => {
    const basesOf = new Map<string, Set<Env>>();
    for (const base of CONFIG_BASES)
      load(
        new Proxy<Record<string, string | undefined>>(
          { ...base },
          {
            get(target, name) {
              if (typeof name === "string")
                basesOf.set(name, (basesOf.get(name) ?? new Set()).add(base));
              return target[name as string];
            },
          },
        ),
      );
    return [tier, basesOf];
  }),
);

/**
 * `NAME: value` for every default cell that is a plain value (a number,
 * true/false, a word or URL), one per variable of its row, or one for all of
 * them. Cells that describe a default (`unset`, `—`, `<host>-<pid>`, "half of
 * `ulimit -n`", "1 on a cluster") are not values and are left out.
 */
function documentedDefaults(): [string, string][] {
  const found: [string, string][] = [];
  for (const [names = "", defaults = ""] of tableRows(readme)) {
    const variables = [...names.matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`/g)].map(
      (m) => m[1] as string,
    );
    if (variables.length === 0) continue;
    const values = defaults.split(", ").map((part) => {
      const value = part.replace(/^`([^`<>]+)`$/, "$1");
      return /^[\w.*:/-]+$/.test(value) && value !== "unset" ? value : undefined;
    });
    const spread = values.length === 1 ? variables.map(() => values[0]) : values;
    if (spread.length !== variables.length) continue;
    variables.forEach((name, i) => {
      const value = spread[i];
      if (value !== undefined) found.push([name, value]);
    });
  }
  return found;
}

const UNIT_FACTORS: Record<string, (name: string) => number> = {
  "": () => 1,
  ms: () => 1,
  m: () => 1,
  s: (name) => (name.endsWith("_MS") ? 1_000 : 1),
  min: (name) => (name.endsWith("_MS") ? 60_000 : 60),
  KiB: () => 1024,
  MiB: () => 1024 * 1024,
};

/**
 * "`NAME` (value unit" and "(`NAME`, value unit" in the docs' prose, e.g.
 * "`UPSTREAM_TIMEOUT_MS` (3000)", "`PING_MAX_LIVE_AGE_MS` (2 min)", "(`GEOFENCE_EXIT_MARGIN_M`, 25 m)",
 * as `NAME=value` in the variable's own unit.
 */
function proseDefaults(text: string): [string, string][] {
  const forms = [
    /`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)` \((\d[\d,.]*)(?: ?(ms|s|m|min|KiB|MiB))?[),;]/g,
    /\(`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`, (\d[\d,.]*)(?: ?(ms|s|m|min|KiB|MiB))?[),;]/g,
  ];
  return forms.flatMap((form) =>
    [...text.matchAll(form)].map(([, name = "", number = "", unit = ""]) => {
      const factor = UNIT_FACTORS[unit]?.(name) ?? 1;
      return [name, String(Number(number.replaceAll(",", "")) * factor)] as [string, string];
    }),
  );
}

/** What is wrong with each `NAME=value` a tier reads, loaded with the value set and unset under each base that reads it. */
function wrongDefaults(defaults: [string, string][]): { wrong: string[]; checked: number } {
  const wrong: string[] = [];
  let checked = 0;
  for (const [name, value] of defaults)
    for (const [tier, load] of Object.entries(LOADERS)) {
      for (const base of readBy[tier]?.get(name) ?? []) {
        checked++;
        try {
          if (!Bun.deepEquals(load({ ...base }), load({ ...base, [name]: value })))
            wrong.push(`${tier}: ${name} is not ${value} by default`);
        } catch (error) {
          wrong.push(`${tier}: ${name}=${value} refused: ${(error as Error).message}`);
        }
      }
    }
  return { wrong, checked };
}

describe("the README's configuration defaults", () => {
  test("every plain default in a configuration table is what the tier's loader uses", () => {
    const { wrong, checked } = wrongDefaults(documentedDefaults());
    expect(wrong).toEqual([]);
    // Most rows are plain values, checked under both bases where both read them; a table
    // reshaped so they no longer parse must fail here.
    expect(checked).toBeGreaterThan(180);
  });

  test('every default a doc gives in prose, as "`NAME` (value)", is the tier\'s', async () => {
    const found = [...(await readDocs())]
      .filter(([path]) => path !== "bench/RESULTS.md") // a bench run's own settings
      .flatMap(([, text]) => proseDefaults(text));
    const { wrong, checked } = wrongDefaults(found);
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });

  test("the drain cuts the README gives with the defaults are the tiers' own", () => {
    const seconds = (ms: number) => `${ms / 1_000} s`;
    const ingest = (env: Env) => ingestDrainTimeoutMs(loadIngestConfig({ ...BASE, ...env }));
    const tracking = (env: Env) => trackingDrainTimeoutMs(loadTrackingConfig({ ...BASE, ...env }));
    const cuts = [
      `(${seconds(tracking({}))} with the defaults, ${seconds(
        tracking({ TRACKING_NODE_TTL_MS: "14000", TRACKING_RING_REFRESH_MS: "100" }),
      )} for a 14 s TTL and 100 ms ticks)`,
      `(${seconds(ingest(KAFKA))} with Kafka and the defaults, ${seconds(
        ingest({ ...KAFKA, KAFKA_DRAIN_WAIT_MS: "10000" }),
      )} for a 10 s Kafka wait)`,
    ];
    expect(cuts.filter((text) => !readme.replace(/\s+/g, " ").includes(text))).toEqual([]);
    // "A drain is cut after 15 s" unless the tier's worst case is longer.
    expect(seconds(gatewayDrainTimeoutMs(loadGatewayConfig({ ...BASE, ...KAFKA })))).toBe("15 s");
    expect(seconds(ingest({}))).toBe("15 s");
    // The compose file's 30 s grace covers the longest ingest cut and a 19 s TTL.
    expect(ingest({ ...KAFKA, KAFKA_DRAIN_WAIT_MS: "10000" })).toBeLessThanOrEqual(30_000);
    expect(tracking({ TRACKING_NODE_TTL_MS: "19000" })).toBeLessThanOrEqual(30_000);
  });
});
