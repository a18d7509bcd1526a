// docker/prometheus/: the config and alert rules pass Debian's promtool,
// the rules' unit tests pass, and every metric and label value they name is
// one the code exports (a renamed metric fails here, not in production).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createMetricsRegistry } from "../core/observability/metrics";

const DIR = join(import.meta.dir, "prometheus");
const ROOT = join(import.meta.dir, "..");
const promtool = Bun.which("promtool");

async function runPromtool(...args: string[]): Promise<{ code: number; output: string }> {
  const child = Bun.spawn(["promtool", ...args], { cwd: DIR, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, output: stdout + stderr };
}

describe.skipIf(!promtool)(
  "promtool (Debian's prometheus package; scripts/setup.sh installs it)",
  () => {
    test("check config: prometheus.yml and the rule file it loads", async () => {
      const { code, output } = await runPromtool("check", "config", "prometheus.yml");
      expect(output).toContain("SUCCESS");
      expect(code).toBe(0);
    });

    test("check rules: alerts.yml", async () => {
      const { code, output } = await runPromtool("check", "rules", "alerts.yml");
      expect(output).toContain("SUCCESS");
      expect(code).toBe(0);
    });

    test("test rules: each alert fires on the series it is for and not on healthy ones", async () => {
      const { code, output } = await runPromtool("test", "rules", "alerts.test.yml");
      expect(output).toContain("SUCCESS");
      expect(code).toBe(0);
    });
  },
);

test("every metric and label value the alerts name is one the code exports", async () => {
  const rules = await Bun.file(join(DIR, "alerts.yml")).text();
  const sources: string[] = [];
  for await (const path of new Bun.Glob("{core,gateway,location-ingest,tracking}/**/*.ts").scan(
    ROOT,
  ))
    if (!path.endsWith(".test.ts")) sources.push(await Bun.file(join(ROOT, path)).text());
  const code = sources.join("\n");
  const exported = new Set(
    [...code.matchAll(/name: "(edge_[a-z0-9_]+)"/g)].map((match) => match[1] as string),
  );
  // The process metrics every tier's registry collects (prom-client's defaults).
  for (const match of (await createMetricsRegistry("x").metrics()).matchAll(/^# TYPE (\S+)/gm))
    exported.add(match[1] as string);

  const named = new Set(
    [...rules.matchAll(/\b(edge_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b(?=[{[\s)/])/g)].map(
      (match) => match[1] as string,
    ),
  );
  expect(named.size).toBeGreaterThan(10);
  for (const metric of named)
    expect({ metric, exported: exported.has(metric) }).toEqual({
      metric,
      exported: true,
    });

  // Label values matched exactly (reason="unavailable", limit="connection_refused", ...).
  const values = new Set(
    [...rules.matchAll(/\b(?:reason|limit|code)="([^"]+)"/g)].map((match) => match[1] as string),
  );
  expect(values.size).toBeGreaterThan(4);
  for (const value of values)
    expect({ value, inCode: code.includes(`"${value}"`) }).toEqual({ value, inCode: true });
});

test("every alert says how bad (critical or warning), what is wrong (summary) and what to check or do (description)", async () => {
  const { groups } = Bun.YAML.parse(await Bun.file(join(DIR, "alerts.yml")).text()) as {
    groups: {
      rules: {
        alert: string;
        labels?: { severity?: string };
        annotations?: { summary?: string; description?: string };
      }[];
    }[];
  };
  const alerts = groups.flatMap((group) => group.rules);
  expect(alerts.length).toBeGreaterThan(20);
  for (const { alert, labels, annotations } of alerts)
    expect({
      alert,
      severity: ["critical", "warning"].includes(labels?.severity ?? ""),
      summary: (annotations?.summary ?? "").length > 10,
      description: (annotations?.description ?? "").length > 30,
    }).toEqual({ alert, severity: true, summary: true, description: true });
});
