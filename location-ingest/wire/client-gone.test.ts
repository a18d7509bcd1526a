// A rider whose connection drops mid-request (a tunnel, a dead battery), as
// a real socket cut part-way through a message, on every path that reads a
// body: the lean gRPC paths and connect-node on h2c, connect-node's chunked
// path on HTTP/1.1. Each must keep what it acked, free what the call held
// (its stream, the rider's call slot, the connection) and say so at debug,
// never as a warning or an error: anyone can do it, any time.
import { beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { keys } from "../../core/redis/keys";
import {
  SendPingRequestSchema,
  StreamPingsRequestSchema,
  UploadPingsRequestSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack } from "../../test/support/ingest";
import { type IngestProcess, spawnIngest } from "../../test/support/ingest-process";
import { grpcFrame } from "../../test/support/raw-grpc";
import { useRedisClient } from "../../test/support/redis-connection";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";

const SERVICE = "/delivery.tracking.v1.LocationIngestService";

let ingest: IngestProcess;
const store = useRedisClient({ stopFirst: async () => ingest?.stop() });

beforeAll(async () => {
  // One call per rider beside its stream: a slot a cut call kept would refuse the next.
  ingest = await spawnIngest({
    REDIS_URL: store.redis.url,
    LOG_LEVEL: "debug",
    INGEST_MAX_CALLS_PER_RIDER: "1",
  });
  // A stream opened before the ingest's subscriber connection is ready warns (and
  // heals on ready): wait until one rider's inbox is subscribed, so the tests see
  // only what their cuts log.
  const warm = await newRider();
  const call = await openCall(warm, "StreamPings", "application/grpc");
  call.stream.write(streamPing(1));
  await waitUntil(async () => (await store.db.publish(keys.riderInbox(warm.riderId), "")) > 0);
  call.socket.destroy();
  await waitUntil(async () => (await ingest.metric("edge_ingest_connections")) === 0);
});

const streamPing = (seq: number) =>
  grpcFrame(
    toBinary(
      StreamPingsRequestSchema,
      create(StreamPingsRequestSchema, { ping: pingTrack(1, { startSeq: BigInt(seq) })[0] }),
    ),
  );
const upload = (seq: number) =>
  grpcFrame(
    toBinary(
      UploadPingsRequestSchema,
      create(UploadPingsRequestSchema, { pings: pingTrack(3, { startSeq: BigInt(seq) }) }),
    ),
  );
const sendPing = (seq: number) =>
  toBinary(
    SendPingRequestSchema,
    create(SendPingRequestSchema, { ping: pingTrack(1, { startSeq: BigInt(seq) })[0] }),
  );

/** How many of the rider's pings the location log (the Redis stream here) holds. */
const loggedPings = async (riderId: string) =>
  (await store.db.xrange(keys.locationLog("london"), "-", "+")).filter(
    ([, fields]) => fields[fields.indexOf("rider") + 1] === riderId,
  ).length;

interface Rider {
  riderId: string;
  token: string;
}

async function newRider(): Promise<Rider> {
  const riderId = uniqueId("rider");
  return { riderId, token: await testToken(riderId, "rider", "london") };
}

/** Writes `bytes` and, once the socket has handed them on, cuts it (no FIN handshake waited for). */
function writeThenCut(socket: Socket, bytes: Buffer | Uint8Array): Promise<void> {
  return new Promise((resolve) =>
    socket.write(bytes, () => {
      socket.destroy();
      resolve();
    }),
  );
}

/** Log lines since `from`, parsed. */
const linesSince = (from: number) =>
  ingest.logs.slice(from).map((line) => JSON.parse(line) as Record<string, unknown>);

/** The HTTP status of a unary SendPing of the rider's on the HTTP/1.1 port (429 while their one call slot is taken). */
async function sendPingStatus(rider: Rider): Promise<number> {
  const answer = await fetch(`http://127.0.0.1:${ingest.httpPort}${SERVICE}/SendPing`, {
    method: "POST",
    headers: { authorization: `Bearer ${rider.token}`, "content-type": "application/proto" },
    body: sendPing(1_000),
  });
  return answer.status;
}

/**
 * After a cut: the call's debug line came, nothing was logged at warn or
 * above, and the rider's one call slot is free again (a unary call of theirs
 * is answered, not 429).
 */
async function expectQuietAndFreed(
  from: number,
  rider: Rider,
  line: (l: Record<string, unknown>) => boolean,
) {
  await waitUntil(() => linesSince(from).some(line), 5_000, "the cut call's debug line");
  expect(linesSince(from).filter((l) => Number(l.level) >= 40)).toEqual([]);
  expect(linesSince(from).find(line)?.level).toBe(20);
  expect(await sendPingStatus(rider)).toBe(200);
}

/** An h2c call on a socket of our own (to cut), collecting the response's length-prefixed messages. */
async function openCall(rider: Rider, path: string, contentType: string) {
  const socket = connect(ingest.grpcPort, "127.0.0.1");
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const session = http2.connect(`http://127.0.0.1:${ingest.grpcPort}`, {
    createConnection: () => socket,
  });
  session.on("error", () => undefined);
  const stream = session.request({
    ":method": "POST",
    ":path": `${SERVICE}/${path}`,
    "content-type": contentType,
    te: "trailers",
    authorization: `Bearer ${rider.token}`,
  });
  stream.on("error", () => undefined);
  let received = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
  });
  /** Whole response messages so far (each an ack on StreamPings). */
  const messages = () => {
    let count = 0;
    for (let at = 0; at + 5 <= received.length; at += 5 + received.readUInt32BE(at + 1)) count++;
    return count;
  };
  /** Sends `bytes` on the call; resolves once they are handed on. */
  const send = (bytes: Buffer) =>
    new Promise<void>((resolve) => stream.write(bytes, () => resolve()));
  // The last bytes went out through the session; an empty write behind them on the
  // socket calls back once they are handed on too, then the socket is cut.
  const cut = () => writeThenCut(socket, Buffer.alloc(0));
  const cutAfter = async (bytes: Buffer) => {
    await send(bytes);
    await cut();
  };
  return { socket, stream, messages, send, cut, cutAfter };
}

describe("h2c: a rider cut mid-message", () => {
  const cutCall = (line: string) => (l: Record<string, unknown>) =>
    l.msg === "h2c call cut before its answer" && String(l.path).endsWith(line);

  test.each([
    ["gRPC (the lean path)", "application/grpc"],
    ["Connect (connect-node)", "application/connect+proto"],
  ])(
    "StreamPings over %s: every acked ping is kept, the stream ends, a debug line",
    async (_, type) => {
      const rider = await newRider();
      const from = ingest.logs.length;
      const call = await openCall(rider, "StreamPings", type);
      for (const seq of [1, 2, 3]) call.stream.write(streamPing(seq));
      await waitUntil(() => call.messages() >= 3, 5_000, "three acks");
      await call.cutAfter(streamPing(4).subarray(0, 12));
      await expectQuietAndFreed(from, rider, cutCall("StreamPings"));
      // The three acked, and the follow-up call's.
      expect(await loggedPings(rider.riderId)).toBe(4);
      await waitUntil(async () => (await ingest.metric("edge_ingest_streams")) === 0);
      await waitUntil(async () => (await ingest.metric("edge_ingest_connections")) === 0);
    },
  );

  test("UploadPings over gRPC (connect-node): the messages in before the cut are kept, the rider's slot frees", async () => {
    const rider = await newRider();
    const from = ingest.logs.length;
    const call = await openCall(rider, "UploadPings", "application/grpc");
    call.stream.write(upload(1));
    await waitUntil(async () => (await loggedPings(rider.riderId)) === 3, 5_000, "upload in");
    await call.cutAfter(upload(4).subarray(0, 12));
    await expectQuietAndFreed(from, rider, cutCall("UploadPings"));
    expect(await loggedPings(rider.riderId)).toBe(4);
    await waitUntil(async () => (await ingest.metric("edge_ingest_connections")) === 0);
  });

  test.each([
    ["gRPC (the lean path)", "application/grpc", (seq: number) => grpcFrame(sendPing(seq))],
    [
      "gRPC-Web (connect-node)",
      "application/grpc-web+proto",
      (seq: number) => grpcFrame(sendPing(seq)),
    ],
    [
      "Connect proto (the lean path)",
      "application/proto",
      (seq: number) => Buffer.from(sendPing(seq)),
    ],
  ])(
    "SendPing over %s cut mid-body: the rider's slot frees, a debug line",
    async (_, type, body) => {
      const rider = await newRider();
      const from = ingest.logs.length;
      const call = await openCall(rider, "SendPing", type);
      await call.send(body(1).subarray(0, 8));
      // The server has the call (its rider's one slot is taken) before the cut. Cut sooner,
      // the reset can reach a loaded server before it read the call's HEADERS: it then
      // never saw the call, and no line comes (seen under load; nothing held, nothing lost).
      await waitUntil(async () => (await sendPingStatus(rider)) === 429, 5_000, "the call open");
      await call.cut();
      await expectQuietAndFreed(from, rider, cutCall("SendPing"));
      await waitUntil(async () => (await ingest.metric("edge_ingest_connections")) === 0);
    },
  );
});

describe("HTTP/1.1: a rider cut mid-body", () => {
  test.each([
    ["JSON", "application/json", `{"ping": {"lat": 51.5`],
    ["gRPC-Web", "application/grpc-web+proto", "\u0000\u0000\u0000\u0000\u0040ab"],
  ])(
    "a chunked SendPing (%s, connect-node) cut mid-chunk: the slot and the connection free, a debug line",
    async (_, type, part) => {
      const rider = await newRider();
      const requestId = uniqueId("cut");
      const before = await ingest.metric("edge_ingest_http_connections");
      const from = ingest.logs.length;
      const socket = connect(ingest.httpPort, "127.0.0.1");
      socket.on("error", () => undefined);
      let received = "";
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString();
      });
      socket.write(
        `POST ${SERVICE}/SendPing HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n` +
          `Authorization: Bearer ${rider.token}\r\nX-Request-Id: ${requestId}\r\n` +
          "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
      );
      // The server asked for the body: the call is in and reading it.
      await waitUntil(() => received.includes("100 Continue"), 5_000, "100 Continue");
      await writeThenCut(socket, Buffer.from(`40\r\n${part}`));
      await expectQuietAndFreed(
        from,
        rider,
        (l) => l.msg === "http client gone before its answer" && l.requestId === requestId,
      );
      await waitUntil(async () => (await ingest.metric("edge_ingest_http_connections")) <= before);
    },
  );
});
