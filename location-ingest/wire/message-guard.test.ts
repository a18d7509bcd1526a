import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { pingTrack, useIngestOnRedis } from "../../test/support/ingest";
import {
  grpcFrame,
  type RawH2Result,
  rawGrpcCall,
  rawH2Request,
} from "../../test/support/raw-grpc";
import { testToken, uniqueId } from "../../test/support/tokens";

const fixture = useIngestOnRedis({ INGEST_MESSAGE_TIMEOUT_MS: "400" });
const SERVICE = "/delivery.tracking.v1.LocationIngestService";
/** A length-delimited field whose length runs past the end: no protobuf parser accepts it. */
const MALFORMED = Buffer.from([0x0a, 0xff]);
const GRPC = { INVALID_ARGUMENT: "3", DEADLINE_EXCEEDED: "4", RESOURCE_EXHAUSTED: "8" };

let session: http2.ClientHttp2Session;
let token: string;

beforeAll(async () => {
  session = http2.connect(fixture.ingest.grpcUrl);
  token = await testToken(uniqueId("rider"), "rider", "london");
});

afterAll(() => {
  session?.close();
});

function pingFrame(seq = 1n): Buffer {
  const [ping] = pingTrack(1, { startSeq: seq });
  return grpcFrame(toBinary(StreamPingsRequestSchema, create(StreamPingsRequestSchema, { ping })));
}

/** The error code a Connect streaming response ended with (its end-stream message). */
function connectEndStreamCode(result: RawH2Result): string | undefined {
  let offset = 0;
  while (offset + 5 <= result.body.length) {
    const flags = result.body[offset] as number;
    const length = result.body.readUInt32BE(offset + 1);
    const payload = result.body.subarray(offset + 5, offset + 5 + length);
    if (flags & 0x02) return JSON.parse(payload.toString()).error?.code;
    offset += 5 + length;
  }
  return undefined;
}

/** The grpc-status a gRPC-Web response carried in its trailer frame. */
function grpcWebStatus(body: Buffer): string | undefined {
  let offset = 0;
  while (offset + 5 <= body.length) {
    const flags = body[offset] as number;
    const length = body.readUInt32BE(offset + 1);
    const payload = body.subarray(offset + 5, offset + 5 + length).toString();
    if (flags & 0x80) return /grpc-status:\s*(\d+)/i.exec(payload)?.[1];
    offset += 5 + length;
  }
  return undefined;
}

const connectStreaming = (path: string, body: Buffer, end = true) =>
  rawH2Request(session, {
    path: `${SERVICE}/${path}`,
    headers: { "content-type": "application/connect+proto", authorization: `Bearer ${token}` },
    body,
    end,
  });

describe("a started message must arrive within INGEST_MESSAGE_TIMEOUT_MS", () => {
  test("a lying length prefix on the lean StreamPings path ends that stream DeadlineExceeded; its connection and a neighbour stream carry on", async () => {
    const neighbour = session.request({
      ":method": "POST",
      ":path": `${SERVICE}/StreamPings`,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${await testToken(uniqueId("rider"), "rider", "london")}`,
    });
    const acks: bigint[] = [];
    neighbour.on("data", (chunk: Buffer) => {
      const response = fromBinary(StreamPingsResponseSchema, chunk.subarray(5));
      if (response.event.case === "ack") acks.push(response.event.value.lastAcceptedSeq);
    });
    neighbour.write(pingFrame(1n));

    // The prefix promises 100 bytes; 10 come, and then nothing.
    const lying = await rawGrpcCall(
      session,
      `${SERVICE}/StreamPings`,
      token,
      grpcFrame(new Uint8Array(10), 100),
      { end: false },
    );
    expect(lying.status).toBe(GRPC.DEADLINE_EXCEEDED);
    expect(lying.message).toContain("did not arrive within 400 ms");

    neighbour.write(pingFrame(2n));
    const deadline = Date.now() + 5_000;
    while (acks.length < 2 && Date.now() < deadline) await Bun.sleep(10);
    expect(acks).toEqual([1n, 2n]);
    neighbour.close();
    const metrics = await fixture.ingest.app.registry.getSingleMetricAsString(
      "edge_ingest_limit_hits_total",
    );
    expect(metrics).toContain('limit="message_timeout"');
  });

  test("a half-sent frame (three bytes of its prefix) ends gRPC and Connect streams DeadlineExceeded", async () => {
    const half = grpcFrame(new Uint8Array(20)).subarray(0, 3);
    const upload = await rawGrpcCall(session, `${SERVICE}/UploadPings`, token, half, {
      end: false,
    });
    expect(upload.status).toBe(GRPC.DEADLINE_EXCEEDED);
    const stream = await connectStreaming("StreamPings", half, false);
    expect(connectEndStreamCode(stream)).toBe("deadline_exceeded");
    // A whole ping, then half of the next: the first is answered, the second times out.
    const afterOne = await connectStreaming(
      "UploadPings",
      Buffer.concat([pingFrame(), half]),
      false,
    );
    expect(connectEndStreamCode(afterOne)).toBe("deadline_exceeded");
  });

  test("a unary call whose request never comes ends DeadlineExceeded (gRPC) / 504 (Connect over HTTP/1.1)", async () => {
    const silent = await rawGrpcCall(session, `${SERVICE}/SendPing`, token, Buffer.alloc(0), {
      end: false,
    });
    expect(silent.status).toBe(GRPC.DEADLINE_EXCEEDED);

    const url = new URL(`${fixture.ingest.httpUrl}${SERVICE}/SendPing`);
    const socket = await Bun.connect({
      hostname: url.hostname,
      port: Number(url.port),
      socket: {
        data: (_s, chunk) => {
          received.push(Buffer.from(chunk));
        },
      },
    });
    const received: Buffer[] = [];
    socket.write(
      `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/proto\r\n` +
        `Authorization: Bearer ${token}\r\nContent-Length: 100\r\n\r\n${"x".repeat(10)}`,
    );
    const deadline = Date.now() + 5_000;
    while (!Buffer.concat(received).includes("\r\n\r\n{") && Date.now() < deadline) {
      await Bun.sleep(10);
    }
    const answer = Buffer.concat(received).toString();
    expect(answer).toStartWith("HTTP/1.1 504");
    expect(answer).toContain('"code":"deadline_exceeded"');
    socket.end();
  });
});

describe("malformed protobuf is InvalidArgument on every method and protocol", () => {
  test("gRPC over h2c: StreamPings (lean path), UploadPings and SendPing, compressed or not", async () => {
    for (const method of ["StreamPings", "UploadPings", "SendPing"]) {
      const result = await rawGrpcCall(
        session,
        `${SERVICE}/${method}`,
        token,
        grpcFrame(MALFORMED),
      );
      expect([method, result.status]).toEqual([method, GRPC.INVALID_ARGUMENT]);
    }
    const gzipped = await rawGrpcCall(
      session,
      `${SERVICE}/UploadPings`,
      token,
      grpcFrame(gzipSync(MALFORMED), undefined, 1),
      { headers: { "grpc-encoding": "gzip" } },
    );
    expect(gzipped.status).toBe(GRPC.INVALID_ARGUMENT);
  });

  test("Connect over h2c: streams end invalid_argument; unary SendPing is 400", async () => {
    for (const method of ["StreamPings", "UploadPings"]) {
      const result = await connectStreaming(method, grpcFrame(MALFORMED));
      expect([method, connectEndStreamCode(result)]).toEqual([method, "invalid_argument"]);
    }
    const unary = await rawH2Request(session, {
      path: `${SERVICE}/SendPing`,
      headers: { "content-type": "application/proto", authorization: `Bearer ${token}` },
      body: MALFORMED,
    });
    expect(unary.status).toBe(400);
    expect(JSON.parse(unary.body.toString())).toMatchObject({ code: "invalid_argument" });
  });

  test("over HTTP/1.1: Connect SendPing is 400 with the Connect error JSON and X-Request-Id; gRPC-Web says 3", async () => {
    const sendPing = `${fixture.ingest.httpUrl}${SERVICE}/SendPing`;
    const connect = await fetch(sendPing, {
      method: "POST",
      headers: {
        "content-type": "application/proto",
        authorization: `Bearer ${token}`,
        "x-request-id": "req-malformed-1",
      },
      body: Uint8Array.from(MALFORMED),
    });
    expect(connect.status).toBe(400);
    expect(connect.headers.get("x-request-id")).toBe("req-malformed-1");
    expect(await connect.json()).toEqual({
      code: "invalid_argument",
      message: "malformed delivery.tracking.v1.SendPingRequest",
    });
    const grpcWeb = await fetch(sendPing, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${token}` },
      body: Uint8Array.from(grpcFrame(MALFORMED)),
    });
    expect(grpcWebStatus(Buffer.from(await grpcWeb.arrayBuffer()))).toBe(GRPC.INVALID_ARGUMENT);
  });
});

describe("oversized messages are ResourceExhausted, refused from the length prefix", () => {
  test("gRPC UploadPings and SendPing over h2c; Connect SendPing over HTTP/1.1 (429)", async () => {
    const upload = await rawGrpcCall(
      session,
      `${SERVICE}/UploadPings`,
      token,
      grpcFrame(new Uint8Array(16), 2 * 1024 * 1024),
      { end: false },
    );
    expect(upload.status).toBe(GRPC.RESOURCE_EXHAUSTED);
    // 8 MiB of zeros gzip to ~8 KiB: refused by what it inflates to.
    const bomb = await rawGrpcCall(
      session,
      `${SERVICE}/UploadPings`,
      token,
      grpcFrame(gzipSync(Buffer.alloc(8 * 1024 * 1024)), undefined, 1),
      { headers: { "grpc-encoding": "gzip" } },
    );
    expect(bomb.status).toBe(GRPC.RESOURCE_EXHAUSTED);
    const sendPing = await rawGrpcCall(
      session,
      `${SERVICE}/SendPing`,
      token,
      grpcFrame(new Uint8Array(16), 5_000),
      { end: false },
    );
    expect(sendPing.status).toBe(GRPC.RESOURCE_EXHAUSTED);
    const http1 = await fetch(`${fixture.ingest.httpUrl}${SERVICE}/SendPing`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${token}` },
      body: new Uint8Array(5_000),
    });
    expect(http1.status).toBe(429);
    const error = await http1.json();
    expect(error.code).toBe("resource_exhausted");
    expect(error.message).toContain("4096");
    const counted = await fixture.ingest.app.registry.getSingleMetricAsString(
      "edge_ingest_limit_hits_total",
    );
    expect(counted).toMatch(/limit="message_too_large"[^\n]* 4$/m);
  });
});
