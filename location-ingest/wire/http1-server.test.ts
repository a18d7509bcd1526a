import { describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { useIngestOnRedis } from "../../test/support/ingest";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { isClientAbort } from "./http1-server";

const fixture = useIngestOnRedis({ INGEST_HTTP_IDLE_TIMEOUT_S: "1" });
const SEND_PING = "/delivery.tracking.v1.LocationIngestService/SendPing";

async function expectJsonError(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  const requestId = response.headers.get("x-request-id");
  expect(requestId).toBeTruthy();
  const body = await response.json();
  expect(body).toEqual({ error: { code, message: expect.any(String), requestId } });
  return body.error.message as string;
}

describe("the HTTP/1.1 port's own errors are the edge's JSON shape with requestId", () => {
  test("an unknown route is 404 and keeps the caller's X-Request-Id", async () => {
    const response = await fetch(`${fixture.ingest.httpUrl}/nope`, {
      headers: { "x-request-id": "req-404" },
    });
    await expectJsonError(response, 404, "not_found");
    expect(response.headers.get("x-request-id")).toBe("req-404");
  });

  test("headers or a query string over INGEST_HTTP_MAX_HEADER_BYTES (8 KiB) are 431", async () => {
    const bigQuery = await fetch(`${fixture.ingest.httpUrl}/healthz?q=${"a".repeat(10_000)}`);
    expect(await expectJsonError(bigQuery, 431, "headers_too_large")).toContain("8192");
    const bigHeader = await fetch(`${fixture.ingest.httpUrl}${SEND_PING}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-padding": "p".repeat(10_000) },
      body: "{}",
    });
    await expectJsonError(bigHeader, 431, "headers_too_large");
  });

  test("past the parser's limit (64 KiB) Bun answers a bare 431 before the ingest sees the request", async () => {
    const between = await fetch(`${fixture.ingest.httpUrl}/healthz?q=${"a".repeat(20_000)}`);
    await expectJsonError(between, 431, "headers_too_large");
    const response = await fetch(`${fixture.ingest.httpUrl}/healthz?q=${"a".repeat(70_000)}`);
    expect(response.status).toBe(431);
    expect(await response.text()).toBe("");
  });

  test("a declared body over the port's limit is 413 JSON; past twice that, Bun's bare 413", async () => {
    const declared = (bytes: number) =>
      fetch(`${fixture.ingest.httpUrl}${SEND_PING}`, {
        method: "POST",
        headers: { "content-type": "application/proto" },
        body: new Uint8Array(bytes),
      });
    await expectJsonError(await declared(1_200_000), 413, "payload_too_large");
    const huge = await declared(3_000_000);
    expect(huge.status).toBe(413);
    expect(await huge.text()).toBe("");
  });

  test("RPC answers carry X-Request-Id too", async () => {
    const response = await fetch(`${fixture.ingest.httpUrl}${SEND_PING}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-rpc" },
      body: "{}",
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("x-request-id")).toBe("req-rpc");
    expect(await response.json()).toMatchObject({ code: "unauthenticated" });
  });
});

test("a silent keep-alive connection is closed after INGEST_HTTP_IDLE_TIMEOUT_S", async () => {
  const url = new URL(fixture.ingest.httpUrl);
  const socket = connect(Number(url.port), url.hostname);
  let answer = "";
  socket.on("data", (chunk) => {
    answer += chunk.toString();
  });
  const closed = new Promise<number>((resolve) => {
    const start = performance.now();
    socket.once("close", () => resolve(performance.now() - start));
  });
  socket.write(`GET /healthz HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
  const afterMs = await closed;
  expect(answer).toStartWith("HTTP/1.1 200");
  expect(afterMs).toBeGreaterThanOrEqual(900);
});

test("a large upload and its large answer pass through the port's front whole, with a client slow to read", async () => {
  const token = await testToken(uniqueId("rider"), "rider", "london");
  // 6,000 pings with an impossible latitude: ~600 KB in, one dropped entry each out.
  const pings = Array.from({ length: 6_000 }, (_, i) => ({
    lat: 999,
    lng: -0.1278,
    accuracyM: 5,
    recordedAtMs: String(Date.now()),
    seq: String(i + 1),
  }));
  // One Connect streaming message (UploadPings is client-streaming): a 5-byte envelope, then JSON.
  const message = Buffer.from(JSON.stringify({ pings }));
  const body = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
  body.writeUInt32BE(message.length, 1);
  const socket = connect(Number(new URL(fixture.ingest.httpUrl).port), "127.0.0.1");
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.write(
    "POST /delivery.tracking.v1.LocationIngestService/UploadPings HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
      `Content-Type: application/connect+json\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(body);
  // Not reading for a while: the answer waits in the front, not lost.
  socket.pause();
  await Bun.sleep(300);
  socket.resume();
  const received = () => Buffer.concat(chunks).toString();
  // The answer is chunked: its last chunk ends it.
  await waitUntil(() => received().endsWith("\r\n0\r\n\r\n"), 10_000);
  socket.destroy();
  const text = received();
  expect(text).toStartWith("HTTP/1.1 200");
  const chunked = Buffer.from(text.slice(text.indexOf("\r\n\r\n") + 4));
  const payload: Buffer[] = [];
  for (let at = 0; ; ) {
    const lineEnd = chunked.indexOf("\r\n", at);
    const size = Number.parseInt(chunked.subarray(at, lineEnd).toString(), 16);
    if (size === 0) break;
    payload.push(chunked.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  const messages = Buffer.concat(payload);
  const answer = JSON.parse(messages.subarray(5, 5 + messages.readUInt32BE(1)).toString());
  expect(answer.dropped).toHaveLength(6_000);
  expect(answer.dropped[5_999]).toMatchObject({ seq: "6000" });
});

test("a fault as the client leaves is still logged as one: only the client's abort itself is not", () => {
  const left = new AbortController();
  left.abort();
  const fault = new TypeError("cannot read properties of undefined");
  expect(isClientAbort(fault, left.signal)).toBe(false);
  expect(isClientAbort(left.signal.reason, left.signal)).toBe(true);
  expect(isClientAbort(new DOMException("cut", "AbortError"), left.signal)).toBe(true);
  // Nothing is the client's leaving while it is still there.
  expect(isClientAbort(new DOMException("cut", "AbortError"), new AbortController().signal)).toBe(
    false,
  );
});
