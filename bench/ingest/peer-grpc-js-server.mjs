// The ingest bench's peer: what a team would write first. A stock
// @grpc/grpc-js server on Node, reading the .proto files with
// @grpc/proto-loader, that checks each ping of a StreamPings and makes the
// ingest's Redis writes for it through ioredis — GEOADD and ZADD on the
// city's keys, the rider's position through store-rider-positions.lua, an
// XADD to the city's location stream (the record as JSON: the stock tools
// have no LocationRecord encoder) — one pipeline per ping, then acks it.
// Plain JavaScript: Node 20 runs no TypeScript. Key names are those of
// core/redis/keys.ts. Prints {"port": N} once listening.
//   node bench/ingest/peer-grpc-js-server.mjs --redis redis://127.0.0.1:6379 --secret <JWT secret>
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Redis } from "ioredis";
import { jwtVerify } from "jose";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { values: args } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    secret: { type: "string", default: "" },
    port: { type: "string", default: "0" },
  },
});
const LIVE_AGE_MS = 120_000;
const POSITION_TTL_S = 86_400;
const secret = new TextEncoder().encode(args.secret);
const redis = new Redis(args.redis);
redis.defineCommand("storeRiderPositions", {
  lua: readFileSync(join(root, "core", "redis", "lua", "store-rider-positions.lua"), "utf8"),
});

const definition = protoLoader.loadSync("delivery/tracking/v1/ingest.proto", {
  includeDirs: [join(root, "proto")],
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const service = grpc.loadPackageDefinition(definition).delivery.tracking.v1.LocationIngestService;

async function riderOf(call) {
  const header = String(call.metadata.get("authorization")[0] ?? "");
  const { payload } = await jwtVerify(header.replace(/^Bearer /, ""), secret);
  if (payload.role !== "rider" || typeof payload.city !== "string") throw new Error("not a rider");
  return { riderId: String(payload.sub), city: payload.city };
}

function valid(ping, lastSeq, now) {
  const recordedAt = Number(ping.recordedAtMs);
  return (
    Number.isFinite(ping.lat) &&
    Math.abs(ping.lat) <= 85 &&
    Number.isFinite(ping.lng) &&
    Math.abs(ping.lng) <= 180 &&
    recordedAt <= now + 5_000 &&
    recordedAt >= now - LIVE_AGE_MS &&
    ping.accuracyM >= 0 &&
    ping.accuracyM <= 150 &&
    BigInt(ping.seq) > lastSeq
  );
}

async function store(rider, ping, receivedAtMs) {
  const { riderId, city } = rider;
  const json = JSON.stringify({
    riderId,
    city,
    ping: { ...ping, recordedAtMs: String(ping.recordedAtMs), seq: String(ping.seq) },
    receivedAtMs: String(receivedAtMs),
  });
  await redis
    .pipeline()
    .geoadd(`geo:{${city}}:riders`, ping.lng, ping.lat, riderId)
    .zadd(`geo:{${city}}:seen`, receivedAtMs, riderId)
    .storeRiderPositions(
      1,
      `rider:{${riderId}}:pos`,
      LIVE_AGE_MS,
      POSITION_TTL_S,
      String(ping.seq),
      receivedAtMs,
      json,
    )
    .xadd(`locations:{${city}}`, "MAXLEN", "~", 1_000_000, "*", "rider", riderId, "record", json)
    .exec();
}

const server = new grpc.Server();
server.addService(service.service, {
  StreamPings(call) {
    let lastSeq = 0n;
    let chain = Promise.resolve();
    const rider = riderOf(call);
    rider.catch(() => call.destroy({ code: grpc.status.UNAUTHENTICATED, details: "bad token" }));
    call.on("data", ({ ping }) => {
      chain = chain.then(async () => {
        const now = Date.now();
        const dropped = [];
        if (valid(ping, lastSeq, now)) {
          await store(await rider, ping, now);
          lastSeq = BigInt(ping.seq);
        } else dropped.push({ seq: ping.seq, reason: "DROP_REASON_OUT_OF_ORDER" });
        call.write({ ack: { lastAcceptedSeq: String(lastSeq), nextIntervalMs: 4_000, dropped } });
      });
    });
    call.on("end", () => chain.then(() => call.end()));
    call.on("error", () => undefined);
  },
  UploadPings(_call, callback) {
    callback({ code: grpc.status.UNIMPLEMENTED });
  },
  SendPing(_call, callback) {
    callback({ code: grpc.status.UNIMPLEMENTED });
  },
});
server.bindAsync(
  `127.0.0.1:${args.port}`,
  grpc.ServerCredentials.createInsecure(),
  (error, port) => {
    if (error) throw error;
    console.log(JSON.stringify({ port }));
  },
);
