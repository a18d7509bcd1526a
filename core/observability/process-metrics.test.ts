import { expect, test } from "bun:test";
import { closeSync, openSync, readFileSync } from "node:fs";
import { waitUntil } from "../../test/support/wait";
import { createMetricsRegistry } from "./metrics";

async function figures(registry = createMetricsRegistry("t")) {
  const values = new Map<string, number>();
  for (const line of (await registry.metrics()).split("\n")) {
    const match = /^(\S+?)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match)
      values.set(
        `${match[1]}${(match[2] ?? "").replace(/,?tier="t"/, "").replace("{}", "")}`,
        Number(match[3]),
      );
  }
  return values;
}

test("every process metric is edge_process_*, without prom-client's defaults", async () => {
  const text = await createMetricsRegistry("t").metrics();
  const names = [...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].map((m) => [m[1], m[2]]);
  expect(names.length).toBeGreaterThan(8);
  for (const [name, type] of names) {
    expect(name).toStartWith("edge_process_");
    // promtool: only counters end in _total.
    expect(name?.endsWith("_total")).toBe(type === "counter");
  }
  expect(text).not.toContain("nodejs_");
  expect(text).not.toContain("heap_bytes");
  expect(text).toContain(
    `edge_process_runtime_info{runtime="bun",version="${Bun.version}",tier="t"} 1`,
  );
});

test("memory is the RSS the kernel reports; the JS heap is smaller; CPU only grows", async () => {
  const registry = createMetricsRegistry("t");
  const first = await figures(registry);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]) * 1024;
  const reported = first.get("edge_process_resident_memory_bytes") ?? 0;
  expect(Math.abs(reported - rss) / rss).toBeLessThan(0.2);
  const heap = first.get("edge_process_js_heap_used_bytes") ?? 0;
  expect(heap).toBeGreaterThan(0);
  expect(heap).toBeLessThan(reported);
  let spin = 0;
  for (let i = 0; i < 2_000_000; i += 1) spin += i % 7;
  expect(spin).toBeGreaterThan(0);
  const second = await figures(registry);
  expect(second.get("edge_process_cpu_seconds_total") ?? 0).toBeGreaterThan(
    first.get("edge_process_cpu_seconds_total") ?? 0,
  );
});

test("open file descriptors follow the process's; the limit is the soft one", async () => {
  const registry = createMetricsRegistry("t");
  const before = (await figures(registry)).get("edge_process_open_fds") ?? 0;
  const fds = Array.from({ length: 5 }, () => openSync("/dev/null", "r"));
  const during = (await figures(registry)).get("edge_process_open_fds") ?? 0;
  for (const fd of fds) closeSync(fd);
  expect(during - before).toBe(5);
  const soft = Number(
    /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1],
  );
  expect((await figures(registry)).get("edge_process_max_fds")).toBe(soft);
});

test("a blocked event loop shows in the delay histogram's upper buckets", async () => {
  const registry = createMetricsRegistry("t");
  const lateCount = async () => {
    const values = await figures(registry);
    const all = values.get('edge_process_event_loop_delay_seconds_bucket{le="+Inf"}') ?? 0;
    return all - (values.get('edge_process_event_loop_delay_seconds_bucket{le="0.1"}') ?? 0);
  };
  const before = await lateCount();
  const blockedUntil = performance.now() + 150;
  while (performance.now() < blockedUntil) {
    // a handler that never yields
  }
  await waitUntil(async () => (await lateCount()) > before);
});
