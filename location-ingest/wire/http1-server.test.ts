import { describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { useIngestOnRedis } from "../../test/support/ingest";

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
