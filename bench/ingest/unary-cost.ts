// What a unary SendPing costs the ingest, this tree against a baseline
// checkout (another commit's tree, its own ingest process), in alternating
// rounds on one redis-server: each form of the call (Connect JSON and proto
// over the HTTP/1.1 port, through its TCP front as riders reach it; gRPC
// and Connect JSON over h2c), closed loop and at open-loop rates, one rider
// per caller, each call a new seq and fix (every ping stored). Reports
// calls/s, p50/p99 and the ingest's CPU µs per answered call for each.
//   bun bench/ingest/unary-cost.ts --baseline DIR [--seconds 3] [--rounds 3] [--riders 50] [--rates 0,500,200] [--forms ...]

import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { mintToken } from "../../core/auth/mint-token";
import { SendPingRequestSchema } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { startRedis } from "../../test/support/redis-server";
import { runLeanLoad } from "../gateway/lean-http-load";
import { cpuSeconds } from "../support/process-stats";
import { runH2UnaryLoad } from "./h2-unary-load";
import { type ServerUnderTest, startIngest } from "./servers-under-test";

const { values: args } = parseArgs({
  options: {
    baseline: { type: "string" },
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    riders: { type: "string", default: "50" },
    rates: { type: "string", default: "0,500,200" },
    forms: {
      type: "string",
      default: "connect-json-http1,connect-proto-http1,grpc-h2c,connect-json-h2c",
    },
  },
});
if (!args.baseline)
  throw new Error("--baseline DIR (a checkout of the commit to compare with) is required");
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const riders = Number(args.riders);
const rates = (args.rates as string).split(",").map(Number);
const forms = (args.forms as string).split(",");
const SEND_PING = "/delivery.tracking.v1.LocationIngestService/SendPing";

const redis = await startRedis();
const secret = randomBytes(32).toString("hex");
const entry = (dir: string) => join(dir, "location-ingest", "main.ts");
const ingests: Record<string, ServerUnderTest> = {
  baseline: await startIngest(entry(args.baseline), redis.url, secret, {
    gcTimer: true,
    name: "baseline",
  }),
  this: await startIngest(entry(join(import.meta.dir, "..", "..")), redis.url, secret, {
    gcTimer: true,
    name: "this",
  }),
};
const tokens = await Promise.all(
  Array.from({ length: riders }, (_, i) =>
    mintToken(secret, { sub: `unary-cost-${i}`, role: "rider", city: "london" }),
  ),
);
// One seq per rider across both ingests (they share Redis): every ping is newer.
const seqs = tokens.map(() => BigInt(Date.now()) * 1_000n);
function nextPing(rider: number) {
  const seq = (seqs[rider] as bigint) + 1n;
  seqs[rider] = seq;
  return {
    lat: 51.5072 + rider * 1e-4,
    lng: -0.1276,
    accuracyM: 5,
    recordedAtMs: BigInt(Date.now()),
    seq,
  };
}
const json = (rider: number) => {
  const ping = nextPing(rider);
  return Buffer.from(
    JSON.stringify({
      ping: { ...ping, recordedAtMs: String(ping.recordedAtMs), seq: String(ping.seq) },
    }),
  );
};
const proto = (rider: number) =>
  toBinary(SendPingRequestSchema, create(SendPingRequestSchema, { ping: nextPing(rider) }));
const grpcFrame = (message: Uint8Array) => {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
};

/** One timed load of `form` at `rate` against `ingest`: answered calls, latencies. */
async function load(form: string, ingest: ServerUnderTest, rate: number) {
  if (form.endsWith("-http1")) {
    const port = Number(new URL(ingest.metricsUrl as string).port);
    const type = form.startsWith("connect-json") ? "application/json" : "application/proto";
    const result = await runLeanLoad({
      url: `http://127.0.0.1:${port}${SEND_PING}`,
      seconds,
      rate,
      connections: riders,
      requestFor: (rider) => {
        const body = type === "application/json" ? json(rider) : proto(rider);
        const head =
          `POST ${SEND_PING} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Authorization: Bearer ${tokens[rider]}\r\nContent-Type: ${type}\r\n` +
          `Connect-Protocol-Version: 1\r\nContent-Length: ${body.byteLength}\r\n\r\n`;
        return Buffer.concat([Buffer.from(head, "latin1"), body]);
      },
    });
    const failed = result.non2xx + result.errors;
    return {
      callsPerSecond: result.requestsPerSecond,
      answered: result.answered,
      failed,
      latencyMs: result.latencyMs,
    };
  }
  const grpc = form.startsWith("grpc");
  return runH2UnaryLoad({
    url: ingest.url,
    path: SEND_PING,
    seconds,
    rate,
    riders,
    callFor: (rider) => ({
      headers: {
        authorization: `Bearer ${tokens[rider]}`,
        "content-type": grpc ? "application/grpc" : "application/json",
        ...(grpc ? { te: "trailers" } : { "connect-protocol-version": "1" }),
      },
      body: grpc ? grpcFrame(proto(rider)) : json(rider),
    }),
  });
}

interface Sample {
  form: string;
  rate: number;
  ingest: string;
  callsPerSecond: number;
  p50: number;
  p99: number;
  cpuMicros: number;
  failed: number;
}
const samples: Sample[] = [];
try {
  for (const form of forms)
    for (const name of Object.keys(ingests)) await load(form, ingests[name] as ServerUnderTest, 0); // warm-up
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ["baseline", "this"] : ["this", "baseline"];
    for (const form of forms) {
      for (const rate of rates) {
        for (const name of order) {
          const ingest = ingests[name] as ServerUnderTest;
          const before = cpuSeconds(ingest.pid);
          const result = await load(form, ingest, rate);
          const cpuMicros =
            ((cpuSeconds(ingest.pid) - before) * 1e6) / Math.max(1, result.answered);
          const sample = {
            form,
            rate,
            ingest: name,
            callsPerSecond: result.callsPerSecond,
            p50: result.latencyMs.p50,
            p99: result.latencyMs.p99,
            cpuMicros,
            failed: result.failed,
          };
          samples.push(sample);
          console.error(
            `${form} ${rate || "closed"} ${name}: ${Math.round(sample.callsPerSecond)}/s p50 ${sample.p50.toFixed(2)} p99 ${sample.p99.toFixed(2)} ms, ${cpuMicros.toFixed(0)} µs/call, failed ${sample.failed}`,
          );
        }
      }
    }
  }
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  console.log(
    "| form | load | baseline calls/s | baseline p50 / p99 ms | baseline µs / call | this calls/s | this p50 / p99 ms | this µs / call | this ÷ baseline (CPU) |",
  );
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const form of forms) {
    for (const rate of rates) {
      const of = (name: string) =>
        samples.filter((s) => s.form === form && s.rate === rate && s.ingest === name);
      const cell = (name: string) => {
        const runs = of(name);
        return [
          Math.round(median(runs.map((s) => s.callsPerSecond))),
          `${median(runs.map((s) => s.p50)).toFixed(2)} / ${median(runs.map((s) => s.p99)).toFixed(2)}`,
          Math.round(median(runs.map((s) => s.cpuMicros))),
        ];
      };
      const [base, mine] = [cell("baseline"), cell("this")];
      const ratio = (mine[2] as number) / (base[2] as number);
      console.log(
        `| ${form} | ${rate ? `${rate}/s` : "closed loop"} | ${base.join(" | ")} | ${mine.join(" | ")} | ${ratio.toFixed(2)} |`,
      );
    }
  }
  const failures = samples.reduce((sum, s) => sum + s.failed, 0);
  console.error(`failed calls in all: ${failures}`);
} finally {
  for (const ingest of Object.values(ingests)) await ingest.stop();
  await redis.stop();
}
process.exit(0);
