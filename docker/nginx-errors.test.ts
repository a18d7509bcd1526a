// The shipped balancer with every tier down: each kind of client still gets
// a clear error with a code (the edge's JSON shape, a gRPC status), never
// nginx's HTML page, and the error log never quotes a token.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { freePort, retryIfPortTaken } from "../test/support/free-port";
import { type ShippedNginx, startShippedNginx } from "../test/support/shipped-nginx";
import { openStockRider } from "../test/support/stock-rider";
import { makeSelfSignedCertificate, type TestCertificate } from "../test/support/tls-cert";
import { testToken } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

let dir = "";
let certificate: TestCertificate;
let nginx: ShippedNginx;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "edge-balancer-down-"));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, "tls"));
  certificate = await makeSelfSignedCertificate(join(dir, "tls"));
  // Every upstream on a port nothing listens on.
  const closed = await freePort();
  const services = ["gateway-1:8080", "gateway-2:8080", "ingest-1:8081", "ingest-2:8081"];
  services.push("ingest-1:8082", "ingest-2:8082", "tracking-1:8090", "tracking-2:8090");
  services.push("tracking-3:8090");
  nginx = await retryIfPortTaken(async () =>
    startShippedNginx({
      dir,
      certificate,
      httpsPort: await freePort(),
      httpPort: await freePort(),
      upstreams: Object.fromEntries(services.map((service) => [service, `127.0.0.1:${closed}`])),
    }),
  );
});

afterAll(async () => {
  await nginx?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tls = () => ({ ca: certificate.pem });

async function jsonError(response: Response) {
  const body = (await response.json()) as { error: { code: string; requestId: string } };
  expect(body.error.requestId).toBe(response.headers.get("x-request-id") as string);
  return [response.status, body.error.code, response.headers.get("retry-after")];
}

test("gateway and Connect over HTTP/1.1: 503 unavailable with Retry-After, in the edge's JSON shape", async () => {
  expect(await jsonError(await fetch(`${nginx.url}/v1/orders/o1/status`, { tls: tls() }))).toEqual([
    503,
    "unavailable",
    "1",
  ]);
  const connect = await fetch(`${nginx.url}/delivery.tracking.v1.LocationIngestService/SendPing`, {
    method: "POST",
    body: "{}",
    headers: { "content-type": "application/json" },
    tls: tls(),
  });
  expect(await jsonError(connect)).toEqual([503, "unavailable", "1"]);
});

test("a track upgrade on either route: 503 unavailable with Retry-After; the token never reaches the error log", async () => {
  const token = await testToken("c-down", "customer");
  for (const path of ["/v1/orders/o1/track", "/tracking/t2/v1/orders/o1/track"]) {
    const response = await fetch(`${nginx.url}${path}?access_token=${token}`, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
      tls: tls(),
    });
    expect(await jsonError(response)).toEqual([503, "unavailable", "1"]);
  }
  // nginx writes a request's access line just after answering it.
  await waitUntil(async () =>
    (await nginx.accessLog()).includes('"path":"/tracking/t2/v1/orders/o1/track"'),
  );
  const logs = `${await nginx.accessLog()}${await nginx.errorLog()}`;
  expect(logs).not.toContain(token);
  expect(logs).not.toContain("access_token");
});

test("a gRPC rider gets UNAVAILABLE (14), which its client retries", async () => {
  const rider = openStockRider(
    `127.0.0.1:${nginx.port}`,
    await testToken("r-down", "rider", "london"),
    grpc.credentials.createSsl(Buffer.from(certificate.pem)),
    { "grpc.ssl_target_name_override": "localhost" },
  );
  try {
    const failure = await rider.ping(5_000).then(
      () => undefined,
      (error: grpc.ServiceError) => error,
    );
    expect(failure?.code).toBe(grpc.status.UNAVAILABLE);
  } finally {
    rider.close();
  }
});

test("a header over nginx's 32 KiB buffer: 431 headers_too_large in the edge's shape", async () => {
  const header = await fetch(`${nginx.url}/v1/orders/o1/status`, {
    headers: { "x-padding": "x".repeat(40_000) },
    tls: tls(),
  });
  expect(header.status).toBe(431);
  expect(((await header.json()) as { error: { code: string } }).error.code).toBe(
    "headers_too_large",
  );
});
