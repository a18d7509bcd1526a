import { expect, test } from "bun:test";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import type { GatewayEnv } from "../context";
import { browserCors } from "./browser-cors";

function corsApp(origins: string[]) {
  const app = new Hono<GatewayEnv>();
  app.use(requestId());
  app.use(browserCors({ origins, maxAgeSeconds: 600 }));
  app.get("/v1/thing", (c) => c.json({ ok: true }));
  return app;
}

test("listed origins: an allowed origin is echoed with the exposed headers; another origin and a client without Origin get none", async () => {
  const app = corsApp(["https://a.example", "https://b.example"]);
  const allowed = await app.request("/v1/thing", { headers: { origin: "https://b.example" } });
  expect(allowed.headers.get("access-control-allow-origin")).toBe("https://b.example");
  expect(allowed.headers.get("access-control-expose-headers")).toContain("Retry-After");
  expect(allowed.headers.get("vary")).toBe("Origin");
  const other = await app.request("/v1/thing", { headers: { origin: "https://evil.example" } });
  expect(other.status).toBe(200);
  expect(other.headers.get("access-control-allow-origin")).toBeNull();
  expect(other.headers.get("access-control-expose-headers")).toBeNull();
  const plain = await app.request("/v1/thing");
  expect(plain.headers.get("access-control-allow-origin")).toBeNull();
  expect(plain.headers.get("vary")).toBe("Origin");
  expect(plain.headers.get("x-request-id")).toBeString();
});

test("a preflight is answered 204 with methods, the asked headers and max age, only for an allowed origin", async () => {
  const app = corsApp(["https://a.example"]);
  const preflight = (origin: string) =>
    app.request("/v1/thing", {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, idempotency-key",
      },
    });
  const ok = await preflight("https://a.example");
  expect(ok.status).toBe(204);
  expect(ok.headers.get("access-control-allow-origin")).toBe("https://a.example");
  expect(ok.headers.get("access-control-allow-methods")).toContain("POST");
  expect(ok.headers.get("access-control-allow-headers")).toBe("authorization, idempotency-key");
  expect(ok.headers.get("access-control-max-age")).toBe("600");
  expect(ok.headers.get("vary")).toBe("Origin, Access-Control-Request-Headers");
  const refused = await preflight("https://evil.example");
  expect(refused.status).toBe(204);
  expect(refused.headers.get("access-control-allow-origin")).toBeNull();
  expect(refused.headers.get("access-control-allow-methods")).toBeNull();
});

test("any origin (*): a browser gets *, whatever its origin", async () => {
  const app = corsApp(["*"]);
  const response = await app.request("/v1/thing", { headers: { origin: "https://x.example" } });
  expect(response.headers.get("access-control-allow-origin")).toBe("*");
});
