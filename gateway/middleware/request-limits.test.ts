import { describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { useGatewayWithUpstream } from "../../test/support/gateway";

const fixture = useGatewayWithUpstream({ GATEWAY_MAX_QUERY_BYTES: "2048" });
const customer = { sub: "c1", role: "customer" } as const;

async function expectError(response: Response, status: number, code: string): Promise<string> {
  const body = (await response.json()) as {
    error: { code: string; message: string; requestId: string };
  };
  expect([response.status, body.error.code]).toEqual([status, code]);
  expect(body.error.requestId).toBe(response.headers.get("x-request-id") ?? "missing");
  return body.error.message;
}

/** One raw HTTP/1.1 exchange: fetch would refuse to send some of these requests. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    socket.on("data", (chunk) => {
      answer += chunk;
    });
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
  });
}

describe("request limits", () => {
  test("malformed percent-encoding anywhere in the URL is 400, before any route", async () => {
    for (const path of [
      "/v1/orders/%ZZ/status",
      "/v1/orders/%E0%A4%A/track",
      "/v1/restaurants?lat=%E0%A4%A&lng=0",
      "/v1/restaurants?lat=51&lng=0&q=%FF",
      "/v1/restaurants/ldn-fish%/menu",
    ]) {
      const message = await expectError(
        await fixture.gateway.call(path, { as: customer }),
        400,
        "bad_request",
      );
      expect(message).toBe("malformed percent-encoding in the URL");
    }
  });

  test("ids that are not key parts are 400 on every route that takes one", async () => {
    const calls: [string, RequestInit][] = [
      ["/v1/orders/a%7Bb%7D/status", {}],
      ["/v1/orders/a%20b/track", {}],
      [`/v1/orders/${"x".repeat(65)}/status`, {}],
      ["/v1/orders/a%2Fb/status", { method: "POST", body: '{"to":"READY","expectedVersion":1}' }],
      ["/v1/restaurants/a%7Bb%7D/menu", {}],
    ];
    for (const [path, init] of calls)
      await expectError(
        await fixture.gateway.call(path, { ...init, as: customer }),
        400,
        "bad_request",
      );
    await expectError(
      await fixture.gateway.call("/v1/rides/a%7Bb%7D", {
        method: "PATCH",
        body: '{"action":"accept","token":"t"}',
        as: { sub: "r1", role: "rider" },
      }),
      400,
      "bad_request",
    );
  });

  test("a long query string or a large header is 431 in the error shape; far past the limit Bun's parser answers a bare 431", async () => {
    const longQuery = `/v1/restaurants?lat=51&lng=0&q=${"a".repeat(3_000)}`;
    expect(
      await expectError(
        await fixture.gateway.call(longQuery, { as: customer }),
        431,
        "headers_too_large",
      ),
    ).toBe("query string over 2048 bytes");
    // The limit is checked before the token: an anonymous caller gets it too.
    await expectError(await fetch(`${fixture.gateway.url}${longQuery}`), 431, "headers_too_large");
    const bigHeader = await fixture.gateway.call("/v1/restaurants?lat=51&lng=0", {
      headers: { "x-filler": "b".repeat(20_000) },
      as: customer,
    });
    expect(await expectError(bigHeader, 431, "headers_too_large")).toBe("headers over 16384 bytes");
    // 20 KB on the request line (over Bun's default 16 KiB) still reaches the middleware.
    const port = fixture.gateway.app.port;
    const answer = await rawExchange(
      port,
      `GET /v1/restaurants?q=${"c".repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    expect(answer).toStartWith("HTTP/1.1 431");
    expect(answer).toContain('"code":"headers_too_large"');
    const far = await rawExchange(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Filler: ${"d".repeat(70_000)}\r\nConnection: close\r\n\r\n`,
    );
    expect(far).toStartWith("HTTP/1.1 431");
    expect(far).not.toContain("{");
  });
});
