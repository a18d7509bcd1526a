// The repo's docs name what the code reads and exports, with current names:
// every variable a tier reads, every metric family and every Redis key is
// documented, and no doc names a variable, metric or key the code no longer
// has. Error codes and routes: api-docs.test.ts.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import type { Env } from "../../core/config/env";
import { keys } from "../../core/redis/keys";
import { loadGatewayConfig } from "../../gateway/config";
import { loadIngestConfig } from "../../location-ingest/config";
import { TRANSPORT_LIMITS } from "../../location-ingest/metrics";
import { loadTrackingConfig } from "../../tracking/config";
import {
  backticked,
  CONFIG_BASES,
  GRPC_NAMES,
  ROOT,
  readRepoFile as read,
  readDocs,
  sourceText,
} from "./repo-docs";

const docs = await readDocs();

// Everything but the docs and the tests: what a name in a doc must still exist in.
const everySource = await sourceText(
  "{edge,package.json,.ci/*}",
  "{core,clients,gateway,location-ingest,tracking,proto,demo,bench,scripts,docker}/**/*",
  "test/support/**/*",
);
const tierSource = await sourceText("{core,gateway,location-ingest,tracking}/**/*.ts");

/** Every variable a tier's loader reads, recorded through a proxy (both Redis and auth branches). */
function variablesRead(): Set<string> {
  const seen = new Set<string>();
  const recording = (values: Record<string, string>): Env =>
    new Proxy(values, {
      get(target, name) {
        if (typeof name === "string") seen.add(name);
        return target[name as string];
      },
    });
  for (const values of CONFIG_BASES) {
    loadIngestConfig(recording(values), { openFileLimit: 4_096 });
    loadIngestConfig(recording(values));
    loadGatewayConfig(recording(values));
    loadTrackingConfig(recording(values));
  }
  seen.add("LOG_LEVEL"); // core/observability/logger.ts, read by every tier
  return seen;
}

describe("configuration", () => {
  test("every variable a tier reads is in the README's configuration tables", async () => {
    const readme = new Set(backticked(docs.get("README.md") as string));
    const read = variablesRead();
    expect(read.size).toBeGreaterThan(50);
    const undocumented = [...read].filter((name) => !readme.has(name));
    expect(undocumented).toEqual([]);
  });

  test("every variable-like name in the docs still exists in the code", () => {
    // Not ours to define: gRPC's status names, buf's rule names.
    const foreign = (name: string) => GRPC_NAMES.has(name) || name.startsWith("FILE_SAME_");
    const stale: string[] = [];
    for (const [path, text] of docs)
      for (const token of backticked(text)) {
        const name = token.split("=")[0] as string;
        if (!/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/.test(name) || foreign(name)) continue;
        if (!new RegExp(`\\b${name}\\b`).test(everySource)) stale.push(`${path}: ${name}`);
      }
    expect(stale).toEqual([]);
  });
});

describe("docker/", () => {
  test("every variable compose and the Dockerfile set on a tier is one a tier reads", async () => {
    const compose = Bun.YAML.parse(await read("docker/compose.yaml")) as {
      services: Record<string, { build?: { target?: string }; environment?: object }>;
    };
    const set = Object.values(compose.services)
      .filter((service) => ["gateway", "ingest", "tracking"].includes(service.build?.target ?? ""))
      .flatMap((service) => Object.keys(service.environment ?? {}));
    for (const [, names] of (await read("docker/Dockerfile")).matchAll(/^ENV (.+)$/gm))
      set.push(...[...(names as string).matchAll(/([A-Z_]+)=/g)].map((m) => m[1] as string));
    expect(set.length).toBeGreaterThan(15);
    const tierReads = variablesRead();
    // NODE_ENV is for the libraries (production mode), not a tier setting.
    const unread = [...new Set(set)].filter((name) => !tierReads.has(name) && name !== "NODE_ENV");
    expect(unread).toEqual([]);
  });

  test("docker/README.md's alert table lists every alert of prometheus/alerts.yml", async () => {
    const rules = [...(await read("docker/prometheus/alerts.yml")).matchAll(/- alert: (\w+)/g)].map(
      (m) => m[1] as string,
    );
    const table = [
      ...(docs.get("docker/README.md") as string).matchAll(
        /^\| `(\w+)` +\| (?:critical|warning) /gm,
      ),
    ].map((m) => m[1] as string);
    expect(rules.length).toBeGreaterThan(15);
    expect(table.sort()).toEqual(rules.sort());
  });
});

describe("metrics", () => {
  const families = new Set(
    [...tierSource.matchAll(/name: "(edge_[a-z0-9_]+)"/g)].map((m) => m[1] as string),
  );

  test("every metric family a tier exports is documented by its full name", () => {
    expect(families.size).toBeGreaterThan(40);
    const documented = new Set(
      ["README.md", "docs/contract.md", "docker/README.md"].flatMap((path) =>
        backticked(docs.get(path) as string).map((token) => token.replace(/\{.*\}$/, "")),
      ),
    );
    expect([...families].filter((name) => !documented.has(name))).toEqual([]);
  });

  test("every limit label of edge_ingest_limit_hits_total is in the README's metrics list and a Transport limits table", () => {
    const readme = docs.get("README.md") as string;
    const list =
      /`edge_ingest_limit_hits_total\{limit\}` \(each([\s\S]*?)\)\.\n/.exec(readme)?.[1] ?? "";
    const tableRows = readme.split("\n").filter((line) => line.startsWith("| "));
    const missing = TRANSPORT_LIMITS.filter(
      (limit) =>
        !backticked(list).includes(limit) ||
        !tableRows.some((row) => backticked(row).includes(limit)),
    );
    expect(missing).toEqual([]);
  });

  test("every metric name in the docs is one a tier exports", () => {
    const stale: string[] = [];
    for (const [path, text] of docs)
      for (const token of backticked(text)) {
        if (!/^edge_[a-z0-9_]+(\{[^}]*\})?$/.test(token)) continue;
        const name = token.replace(/\{.*\}$/, "");
        if (!families.has(name.replace(/_(bucket|sum|count)$/, "")) && !families.has(name))
          stale.push(`${path}: ${token}`);
      }
    expect(stale).toEqual([]);
  });
});

describe("Redis keys", () => {
  // The key table of docs/contract.md: its first column, e.g. `order:{p<n>}:<o>`.
  const documented = (async () =>
    (await read("docs/contract.md"))
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .flatMap((line) => backticked(line.split("|")[1] as string))
      .filter((token) => token.includes(":")))();

  /** A key built with placeholder ids, as a pattern its documented form must match. */
  function pattern(build: (...ids: string[]) => string): RegExp {
    const ids = ["Q1", "Q2"];
    const key = build(...ids)
      .replace(/\{p(?:Q\d|\d+)\}/g, "{p<n>}")
      .replace(/[.*+?^$()|[\]\\]/g, "\\$&");
    // An id inside a hash tag is written {name}; elsewhere <name>.
    const source = key
      .replace(/\\?\{Q\d\\?\}/g, "\\{[a-z0-9 ]+\\}")
      .replace(/\{p<n>\}/g, "\\{p<n>\\}")
      .replace(/Q\d/g, "<[a-z0-9 ]+>");
    return new RegExp(`^${source}$`);
  }

  test("every key built in core/redis/keys.ts is in the contract's key table", async () => {
    const table = await documented;
    expect(table.length).toBeGreaterThan(15);
    const missing = Object.entries(keys)
      .filter(([, build]) => !table.some((token) => pattern(build as never).test(token)))
      .map(([name]) => name);
    expect(missing).toEqual([]);
  });

  test("every key in the contract's key table is one core/redis/keys.ts builds", async () => {
    const patterns = Object.values(keys).map((build) => pattern(build as never));
    const stale = (await documented).filter((token) => !patterns.some((p) => p.test(token)));
    expect(stale).toEqual([]);
  });
});

describe("links", () => {
  /** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
  const slug = (heading: string) =>
    heading
      .replace(/`/g, "")
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");

  test("every relative link in the docs reaches a file in the repo (and a heading there)", async () => {
    const broken: string[] = [];
    let checked = 0;
    for (const [doc, text] of docs)
      for (const [, target = ""] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?|mailto):/.test(target)) continue;
        checked++;
        const [file = "", anchor] = target.split("#");
        const path = file ? normalize(join(dirname(doc), file)) : doc;
        if (path.startsWith("..") || !existsSync(join(ROOT, path))) {
          broken.push(`${doc}: ${target}`);
          continue;
        }
        if (!anchor || !path.endsWith(".md")) continue;
        const headings = [...(await read(path)).matchAll(/^#+ (.+)$/gm)].map((m) =>
          slug(m[1] as string),
        );
        if (!headings.includes(anchor)) broken.push(`${doc}: ${target}`);
      }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });
});
