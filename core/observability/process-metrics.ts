import { readdirSync, readFileSync } from "node:fs";
import { Counter, Gauge, type Registry } from "prom-client";
import { bucketIndex, registerCollectedHistogram } from "./collected-metrics";

/**
 * How late the event loop runs a timer, sampled every this many ms. One
 * sampler per process, shared by every registry in it (a test process may
 * run several tiers).
 */
const LAG_SAMPLE_EVERY_MS = 10;

/** Event-loop delay buckets, in seconds (1 ms .. 2.5 s). */
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

let lagSampler: { counts: Float64Array; sum: number } | undefined;

/** Starts the process's lag sampler on first use: an unref'd timer that never keeps the process up. */
function eventLoopDelays(): { counts: Float64Array; sum: number } {
  if (lagSampler) return lagSampler;
  const sampler = { counts: new Float64Array(LAG_BUCKETS.length + 1), sum: 0 };
  lagSampler = sampler;
  const sample = (due: number) => {
    const late = Math.max(0, performance.now() - due) / 1000;
    const bucket = bucketIndex(LAG_BUCKETS, late);
    sampler.counts[bucket] = (sampler.counts[bucket] ?? 0) + 1;
    sampler.sum += late;
    schedule();
  };
  const schedule = () => {
    setTimeout(sample, LAG_SAMPLE_EVERY_MS, performance.now() + LAG_SAMPLE_EVERY_MS).unref();
  };
  schedule();
  return sampler;
}

/** Fields of /proc/self/status in bytes (VmRSS, VmSize...), or undefined off Linux. */
function procStatusBytes(): Map<string, number> | undefined {
  try {
    const fields = new Map<string, number>();
    for (const line of readFileSync("/proc/self/status", "utf8").split("\n")) {
      const match = /^(\w+):\s+(\d+) kB$/.exec(line);
      if (match) fields.set(match[1] as string, Number(match[2]) * 1024);
    }
    return fields;
  } catch {
    return undefined;
  }
}

function openFileDescriptors(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

function maxFileDescriptors(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The process metrics every tier exposes, all `edge_process_*`, each one a
 * figure Bun reports truthfully. In place of prom-client's defaults, which
 * under Bun report VmData (gigabytes of address space JavaScriptCore
 * reserves) as heap bytes, zeros for libuv handles, requests and V8 heap
 * spaces Bun does not have, Node's version, and three gauges named `_total`
 * that fail `promtool check metrics`. Memory figures come from
 * /proc/self/status where there is one (Linux), the JS heap from
 * JavaScriptCore through process.memoryUsage(); a figure the platform
 * cannot give is left out rather than reported as zero.
 */
export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  let cpu = { user: 0, system: 0 };
  // As in prom-client: the first metric's collect() sets its siblings, which the
  // registry reads right after it (in registration order) within the same scrape.
  new Counter({
    name: "edge_process_cpu_user_seconds_total",
    help: "User CPU time spent, in seconds",
    registers,
    collect() {
      const now = process.cpuUsage();
      this.inc((now.user - cpu.user) / 1e6);
      cpuSystem.inc((now.system - cpu.system) / 1e6);
      cpuTotal.inc((now.user - cpu.user + now.system - cpu.system) / 1e6);
      cpu = now;
    },
  });
  const cpuSystem = new Counter({
    name: "edge_process_cpu_system_seconds_total",
    help: "System CPU time spent, in seconds",
    registers,
  });
  const cpuTotal = new Counter({
    name: "edge_process_cpu_seconds_total",
    help: "User and system CPU time spent, in seconds",
    registers,
  });

  new Gauge({
    name: "edge_process_start_time_seconds",
    help: "When the process started, in seconds since the Unix epoch",
    registers,
    collect() {
      this.set(Math.round(Date.now() / 1000 - process.uptime()));
    },
  });

  const memory = procStatusBytes();
  new Gauge({
    name: "edge_process_resident_memory_bytes",
    help: "Resident set size (RSS), in bytes",
    registers,
    collect() {
      this.set(procStatusBytes()?.get("VmRSS") ?? process.memoryUsage.rss());
    },
  });
  if (memory?.has("VmSize"))
    new Gauge({
      name: "edge_process_virtual_memory_bytes",
      help: "Virtual memory size, in bytes (JavaScriptCore reserves gigabytes it never touches: watch RSS)",
      registers,
      collect() {
        const bytes = procStatusBytes()?.get("VmSize");
        if (bytes !== undefined) this.set(bytes);
      },
    });

  new Gauge({
    name: "edge_process_js_heap_used_bytes",
    help: "Bytes of live objects in the JavaScript heap",
    registers,
    collect() {
      const usage = process.memoryUsage();
      this.set(usage.heapUsed);
      jsHeapSize.set(usage.heapTotal);
      jsExternal.set(usage.external);
    },
  });
  const jsHeapSize = new Gauge({
    name: "edge_process_js_heap_size_bytes",
    help: "Size of the JavaScript heap, in bytes",
    registers,
  });
  const jsExternal = new Gauge({
    name: "edge_process_js_external_memory_bytes",
    help: "Memory held outside the JavaScript heap on behalf of JavaScript objects (buffers, strings), in bytes",
    registers,
  });

  if (openFileDescriptors() !== undefined)
    new Gauge({
      name: "edge_process_open_fds",
      help: "Open file descriptors",
      registers,
      collect() {
        const open = openFileDescriptors();
        if (open !== undefined) this.set(open);
      },
    });
  if (maxFileDescriptors() !== undefined)
    new Gauge({
      name: "edge_process_max_fds",
      help: "Maximum open file descriptors (the soft limit)",
      registers,
      collect() {
        const max = maxFileDescriptors();
        if (max !== undefined) this.set(max);
      },
    });

  new Gauge({
    name: "edge_process_runtime_info",
    help: "The JavaScript runtime running the process (always 1)",
    labelNames: ["runtime", "version"] as const,
    registers,
  }).set({ runtime: "bun", version: Bun.version }, 1);

  const delays = eventLoopDelays();
  registerCollectedHistogram(registry, {
    name: "edge_process_event_loop_delay_seconds",
    help: `How late the event loop ran a timer, sampled every ${LAG_SAMPLE_EVERY_MS} ms`,
    buckets: LAG_BUCKETS,
    read: () => [{ labels: {}, counts: delays.counts, sum: delays.sum }],
  });
}
