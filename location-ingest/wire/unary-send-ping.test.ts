import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import {
  PingAckSchema,
  SendPingRequestSchema,
  SendPingResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack } from "../../test/support/ingest";
import { type IngestProcess, spawnIngest } from "../../test/support/ingest-process";
import { grpcFrame, rawH2Request } from "../../test/support/raw-grpc";
import { type RedisServer, startRedis } from "../../test/support/redis-server";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { leanUnaryForm } from "./unary-send-ping";

// The lean unary SendPing (unary-send-ping.ts) against connect-node on the
// same ingest process: a plain call takes the lean path on either port, the same
// call gzipped over h2c goes through connect-node (the lean path leaves
// compression to it; the HTTP/1.1 port takes none), and both must answer
// the same bytes, status and codes.
const PATH = "/delivery.tracking.v1.LocationIngestService/SendPing";

let redis: RedisServer;
let ingest: IngestProcess;
let session: http2.ClientHttp2Session;
const httpUrl = () => `http://127.0.0.1:${ingest.httpPort}`;

beforeAll(async () => {
  redis = await startRedis();
  ingest = await spawnIngest({ REDIS_URL: redis.url, LOG_LEVEL: "debug" });
  session = http2.connect(`http://127.0.0.1:${ingest.grpcPort}`);
});

afterAll(async () => {
  session?.close();
  await ingest?.stop();
  await redis?.stop();
});

type Form = "connect-json" | "connect-proto" | "grpc";
type Port = "http1" | "h2c";
interface Answer {
  status: number;
  contentType: string | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  body: Buffer;
  requestId: string | undefined;
}

function requestBytes(form: Form, seq: bigint | undefined): Buffer {
  const ping = seq === undefined ? undefined : pingTrack(1, { startSeq: seq })[0];
  const message = create(SendPingRequestSchema, { ping });
  if (form === "connect-json")
    return Buffer.from(JSON.stringify(toJson(SendPingRequestSchema, message)));
  const binary = toBinary(SendPingRequestSchema, message);
  return form === "grpc" ? grpcFrame(binary) : Buffer.from(binary);
}

/** One SendPing in `form` on `port` (the lean path), or gzipped over h2c (connect-node's). */
async function call(
  form: Form,
  port: Port,
  options: { token?: string; body: Buffer; gzip: boolean },
): Promise<Answer> {
  const { token, gzip } = options;
  if (gzip) port = "h2c";
  let body = options.body;
  const headers: Record<string, string> = {
    "content-type":
      form === "connect-json"
        ? "application/json"
        : form === "grpc"
          ? "application/grpc"
          : "application/proto",
    "x-request-id": "req-unary-1",
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  };
  if (gzip && form === "grpc") {
    body = grpcFrame(gzipSync(body.subarray(5)), undefined, 1);
    headers["grpc-encoding"] = "gzip";
  } else if (gzip) {
    body = gzipSync(body);
    headers["content-encoding"] = "gzip";
  }
  if (form === "grpc") headers.te = "trailers";
  if (port === "http1") {
    const response = await fetch(`${httpUrl()}${PATH}`, {
      method: "POST",
      headers,
      body: new Uint8Array(body),
    });
    return {
      status: response.status,
      contentType: response.headers.get("content-type") ?? undefined,
      grpcStatus: undefined,
      grpcMessage: undefined,
      body: Buffer.from(await response.arrayBuffer()),
      requestId: response.headers.get("x-request-id") ?? undefined,
    };
  }
  const result = await rawH2Request(session, { path: PATH, headers, body });
  const grpcStatus = result.trailers["grpc-status"] ?? result.headers["grpc-status"];
  const grpcMessage = result.trailers["grpc-message"] ?? result.headers["grpc-message"];
  return {
    status: result.status,
    contentType: result.headers["content-type"],
    grpcStatus: grpcStatus === undefined ? undefined : String(grpcStatus),
    grpcMessage: grpcMessage === undefined ? undefined : decodeURIComponent(String(grpcMessage)),
    body: result.body,
    requestId: undefined,
  };
}

function ackOf(form: Form, answer: Answer): { lastAcceptedSeq?: string; dropped?: unknown[] } {
  if (form === "connect-json") return JSON.parse(answer.body.toString()).ack;
  const bytes = form === "grpc" ? answer.body.subarray(5) : answer.body;
  const response = fromBinary(SendPingResponseSchema, bytes);
  return response.ack ? (toJson(PingAckSchema, response.ack) as { lastAcceptedSeq?: string }) : {};
}

const CASES: [Form, Port][] = [
  ["connect-json", "http1"],
  ["connect-proto", "http1"],
  ["connect-json", "h2c"],
  ["connect-proto", "h2c"],
  ["grpc", "h2c"],
];

describe("unary SendPing: the lean path answers as connect-node does", () => {
  test.each(CASES)(
    "%s over %s: acks in the rider's order, the same answer either way",
    async (form, port) => {
      const token = await testToken(uniqueId("rider"), "rider", "london");
      const lean = await call(form, port, { token, body: requestBytes(form, 5n), gzip: false });
      expect(lean.status).toBe(200);
      if (form === "grpc") expect(lean.grpcStatus).toBe("0");
      expect(ackOf(form, lean)).toMatchObject({ lastAcceptedSeq: "5" });
      // The next seq through connect-node, then a stale one each way: the same ack bytes.
      const viaConnect = await call(form, port, {
        token,
        body: requestBytes(form, 6n),
        gzip: true,
      });
      expect(ackOf(form, viaConnect)).toMatchObject({ lastAcceptedSeq: "6" });
      const staleLean = await call(form, port, {
        token,
        body: requestBytes(form, 4n),
        gzip: false,
      });
      const staleConnect = await call(form, port, {
        token,
        body: requestBytes(form, 4n),
        gzip: true,
      });
      expect(ackOf(form, staleLean).dropped).toHaveLength(1);
      expect(staleLean.body).toEqual(staleConnect.body);
      expect(staleLean.contentType).toBe(staleConnect.contentType);
      if (port === "http1") expect(staleLean.requestId).toBe("req-unary-1");
    },
  );

  test.each(CASES)(
    "%s over %s: no token, no ping and a malformed body end with connect-node's codes",
    async (form, port) => {
      const token = await testToken(uniqueId("rider"), "rider", "london");
      const malformed =
        form === "connect-json"
          ? Buffer.from('{"ping": ')
          : form === "grpc"
            ? grpcFrame(Buffer.from([0x0a, 0xff]))
            : Buffer.from([0x0a, 0xff]);
      const inputs = [
        { token: undefined, body: requestBytes(form, 1n), code: ["unauthenticated", "16"] },
        { token, body: requestBytes(form, undefined), code: ["invalid_argument", "3"] },
        { token, body: malformed, code: ["invalid_argument", "3"] },
      ];
      for (const input of inputs) {
        const lean = await call(form, port, { ...input, gzip: false });
        const viaConnect = await call(form, port, { ...input, gzip: true });
        if (form === "grpc") {
          expect(lean.grpcStatus).toBe(input.code[1]);
          expect([lean.grpcStatus, lean.grpcMessage]).toEqual([
            viaConnect.grpcStatus,
            viaConnect.grpcMessage,
          ]);
        } else {
          expect(JSON.parse(lean.body.toString()).code).toBe(input.code[0]);
          expect([lean.status, lean.body.toString()]).toEqual([
            viaConnect.status,
            viaConnect.body.toString(),
          ]);
        }
      }
    },
  );
});

describe("which calls take the lean path", () => {
  const head = (method: string, headers: Record<string, string>) => ({
    method,
    header: (name: string) => headers[name],
  });
  test("plain Connect unary JSON / proto, and gRPC where the port speaks it", () => {
    expect(
      leanUnaryForm(
        head("POST", { "content-type": "application/json", "content-length": "120" }),
        "http1",
      ),
    ).toBe("connect-json");
    expect(
      leanUnaryForm(
        head("POST", {
          "content-type": "application/json; charset=utf-8",
          "content-length": "120",
          "connect-timeout-ms": "5000",
        }),
        "h2c",
      ),
    ).toBe("connect-json");
    expect(leanUnaryForm(head("POST", { "content-type": "application/proto" }), "h2c")).toBe(
      "connect-proto",
    );
    expect(
      leanUnaryForm(
        head("POST", { "content-type": "application/grpc", "grpc-timeout": "5S" }),
        "h2c",
      ),
    ).toBe("grpc");
    expect(
      leanUnaryForm(
        head("POST", { "content-type": "application/grpc+proto", "grpc-encoding": "identity" }),
        "h2c",
      ),
    ).toBe("grpc");
  });
  test("everything else is connect-node's: compression, gRPC-Web, gRPC on HTTP/1.1, GET, streams, a bad timeout, a body over one message, a chunked HTTP/1.1 body (with a length or not)", () => {
    const refused = [
      head("POST", { "content-type": "application/proto", "content-encoding": "gzip" }),
      head("POST", { "content-type": "application/grpc", "grpc-encoding": "gzip" }),
      head("POST", { "content-type": "application/grpc-web+proto" }),
      head("POST", { "content-type": "application/grpc+json" }),
      head("GET", { "content-type": "application/json" }),
      head("POST", { "content-type": "application/connect+json" }),
      head("POST", { "content-type": "application/json", "connect-timeout-ms": "soon" }),
      head("POST", { "content-type": "application/grpc", "grpc-timeout": "5X" }),
      head("POST", { "content-type": "application/json", "content-length": "5000" }),
      head("POST", { "content-type": "text/plain" }),
    ];
    for (const request of refused) expect(leanUnaryForm(request, "h2c")).toBeUndefined();
    // HTTP/1.1 reads the body whole first: only with a declared length within the limit.
    const type = { "content-type": "application/json" };
    expect(leanUnaryForm(head("POST", type), "http1")).toBeUndefined();
    expect(
      leanUnaryForm(head("POST", { ...type, "transfer-encoding": "chunked" }), "http1"),
    ).toBeUndefined();
    // A declared length beside a transfer coding does not say how long the body is.
    const both = { ...type, "content-length": "20", "transfer-encoding": "chunked" };
    expect(leanUnaryForm(head("POST", both), "http1")).toBeUndefined();
    expect(
      leanUnaryForm(
        head("POST", { "content-type": "application/grpc", "content-length": "20" }),
        "http1",
      ),
    ).toBeUndefined();
  });
});

test("a chunked HTTP/1.1 SendPing past the message limit is refused as it streams (429), never read whole first", async () => {
  const token = await testToken(uniqueId("rider"), "rider", "london");
  const socket = connect(ingest.httpPort, "127.0.0.1");
  let received = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString();
  });
  const chunk = `{"ping": {"lat": 51.5, "pad": "${"x".repeat(8_000)}"`;
  // One 8 KB chunk, then nothing: the body never ends.
  socket.write(
    `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Authorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${chunk.length.toString(16)}\r\n${chunk}\r\n`,
  );
  // Well inside the message timeout (10 s): the guard's limit, not the clock, ends it.
  await waitUntil(() => received.includes("\r\n\r\n"), 5_000);
  socket.destroy();
  expect(received).toStartWith("HTTP/1.1 429");
  expect(received).toContain('"code":"resource_exhausted"');
});

test("a client that leaves mid-body on the lean HTTP/1.1 path is a debug line, not an error: anyone can do it", async () => {
  const token = await testToken(uniqueId("rider"), "rider", "london");
  const socket = connect(ingest.httpPort, "127.0.0.1");
  let received = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString();
  });
  socket.on("error", () => undefined);
  socket.write(
    `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Authorization: Bearer ${token}\r\nContent-Length: 300\r\nExpect: 100-continue\r\n\r\n{"ping":`,
  );
  // The server asked for the body: the lean path is reading it.
  await waitUntil(() => received.includes("100 Continue"));
  socket.destroy();
  await waitUntil(() =>
    ingest.logs.some((line) => line.includes("http client gone before its answer")),
  );
  expect(ingest.logs.filter((line) => line.includes("http request failed"))).toEqual([]);
});
