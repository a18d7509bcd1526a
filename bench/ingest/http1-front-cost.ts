// What the HTTP/1.1 port's TCP front (wire/http1-connection-guard.ts) costs:
// the same Connect unary SendPing calls (JSON, one rider per keep-alive
// connection, each ping a new seq, so every one is stored) sent to the
// public port, through the front, and straight to the HTTP server behind it
// on its loopback port, in alternating rounds against one ingest process:
// closed loop, then an open-loop rate. Reports req/s, p50/p99 and the
// ingest's CPU µs per answered call for each.
//   bun bench/ingest/http1-front-cost.ts [--seconds 4] [--rounds 3] [--connections 50] [--rate 2000]
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mintToken } from "../../core/auth/mint-token";
import { startRedis } from "../../test/support/redis-server";
import { type LeanLoadResult, runLeanLoad } from "../gateway/lean-http-load";
import { cpuSeconds } from "../support/process-stats";
import { startIngest } from "./servers-under-test";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
    connections: { type: "string", default: "50" },
    rate: { type: "string", default: "2000" },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const connections = Number(args.connections);
const rate = Number(args.rate);
const SEND_PING = "/delivery.tracking.v1.LocationIngestService/SendPing";
const INGEST_ENTRY = join(import.meta.dir, "..", "..", "location-ingest", "main.ts");

/**
 * The loopback port the ingest's HTTP server listens on behind the front: a
 * listening TCP socket of that process on 127.0.0.1 that is none of its
 * public ports (/proc/net/tcp, matched by the process's socket inodes).
 */
function innerPort(pid: number, publicPorts: number[]): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return "";
      }
    })();
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const ports = readFileSync(`/proc/${pid}/net/tcp`, "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    // local_address is field 1 (hex ip:port), st field 3 (0A = LISTEN), inode field 9.
    .filter((fields) => fields[3] === "0A" && inodes.has(fields[9] ?? ""))
    .filter((fields) => fields[1]?.startsWith("0100007F:"))
    .map((fields) => Number.parseInt(fields[1]?.split(":")[1] ?? "", 16))
    .filter((port) => !publicPorts.includes(port));
  if (ports.length !== 1) throw new Error(`expected one inner port, found ${ports.join(", ")}`);
  return ports[0] as number;
}

const redis = await startRedis();
const secret = randomBytes(32).toString("hex");
const ingest = await startIngest(INGEST_ENTRY, redis.url, secret, { gcTimer: true });
const httpPort = Number(new URL(ingest.metricsUrl as string).port);
const targets = {
  front: httpPort,
  direct: innerPort(ingest.pid, [httpPort, Number(new URL(ingest.url).port)]),
};

// One rider per connection; each call carries that rider's next seq and a fresh fix.
const tokens = await Promise.all(
  Array.from({ length: connections }, (_, i) =>
    mintToken(secret, { sub: `front-cost-${i}`, role: "rider", city: "london" }),
  ),
);
const seqs = tokens.map(() => BigInt(Date.now()) * 1_000n);
const requestFor = (port: number) => (connection: number) => {
  const seq = (seqs[connection] as bigint) + 1n;
  seqs[connection] = seq;
  const body = JSON.stringify({
    ping: {
      lat: 51.5072 + connection * 1e-4,
      lng: -0.1276,
      accuracyM: 5,
      recordedAtMs: String(Date.now()),
      seq: String(seq),
    },
  });
  return Buffer.from(
    `POST ${SEND_PING} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Authorization: Bearer ${tokens[connection]}\r\nContent-Type: application/json\r\n` +
      `Connect-Protocol-Version: 1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    "latin1",
  );
};

type Target = keyof typeof targets;
interface Sample {
  target: Target;
  mode: string;
  result: LeanLoadResult;
  cpuMicrosPerCall: number;
}
const samples: Sample[] = [];

async function measure(target: Target, mode: string, loadRate: number): Promise<void> {
  const port = targets[target];
  const before = cpuSeconds(ingest.pid);
  const result = await runLeanLoad({
    url: `http://127.0.0.1:${port}${SEND_PING}`,
    seconds,
    rate: loadRate,
    connections,
    requestFor: requestFor(port),
  });
  const cpu = cpuSeconds(ingest.pid) - before;
  const cpuMicrosPerCall = (cpu * 1e6) / Math.max(1, result.answered);
  samples.push({ target, mode, result, cpuMicrosPerCall });
  console.error(
    `${target.padEnd(6)} ${mode.padEnd(11)} ${Math.round(result.requestsPerSecond)} req/s, ` +
      `p50 ${result.latencyMs.p50} / p99 ${result.latencyMs.p99} ms, ` +
      `${cpuMicrosPerCall.toFixed(1)} µs CPU/call, non-2xx ${result.non2xx}, errors ${result.errors}`,
  );
}

try {
  // A short warm-up of each path (JIT, connections, the riders' sessions).
  for (const target of ["front", "direct"] as Target[]) {
    await runLeanLoad({
      url: `http://127.0.0.1:${targets[target]}${SEND_PING}`,
      seconds: 1,
      rate: 0,
      connections,
      requestFor: requestFor(targets[target]),
    });
  }
  for (let round = 0; round < rounds; round++) {
    const order: Target[] = round % 2 === 0 ? ["front", "direct"] : ["direct", "front"];
    for (const target of order) await measure(target, "closed loop", 0);
    for (const target of order) await measure(target, `${rate}/s`, rate);
  }
  const metrics = await fetch(ingest.metricsUrl as string).then((r) => r.text());
  const dropped = metrics
    .split("\n")
    .filter((line) => line.startsWith("edge_ingest_pings_dropped_total{"));
  console.error(`pings dropped: ${dropped.length === 0 ? "none" : dropped.join("; ")}`);

  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  };
  console.log(
    "| mode | path | req/s | p50 ms | p99 ms | ingest CPU µs / call | front ÷ direct (CPU) |",
  );
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
  for (const mode of [...new Set(samples.map((s) => s.mode))]) {
    const of = (target: Target) => samples.filter((s) => s.mode === mode && s.target === target);
    const cpu = (target: Target) => median(of(target).map((s) => s.cpuMicrosPerCall));
    for (const target of ["direct", "front"] as Target[]) {
      const runs = of(target);
      console.log(
        `| ${mode} | ${target} | ${Math.round(median(runs.map((s) => s.result.requestsPerSecond)))} ` +
          `| ${median(runs.map((s) => s.result.latencyMs.p50)).toFixed(2)} ` +
          `| ${median(runs.map((s) => s.result.latencyMs.p99)).toFixed(2)} ` +
          `| ${cpu(target).toFixed(1)} ` +
          `| ${target === "front" ? (cpu("front") / cpu("direct")).toFixed(2) : ""} |`,
      );
    }
  }
} finally {
  await ingest.stop();
  await redis.stop();
}
process.exit(0);
