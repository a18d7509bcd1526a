import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import pino from "pino";
import { createTokenVerifier } from "../../core/auth/token-verifier";
import { createAuthFailureLimiter } from "../../core/limits/auth-failure-limit";
import { useRedisConnection } from "../../test/support/redis-connection";
import { TEST_JWT_SECRET, testToken, uniqueId } from "../../test/support/tokens";
import type { GatewayEnv } from "../context";
import { authenticate } from "./authenticate";
import { createErrorHandler } from "./error-handler";
import { requireRole } from "./require-role";

const app = new Hono<GatewayEnv>();
app.onError(createErrorHandler(pino({ level: "silent" })));
app.use(authenticate(createTokenVerifier({ secret: TEST_JWT_SECRET })));
app.get("/who", (c) => c.json(c.get("identity")));
app.get("/dispatch-only", requireRole("dispatcher", "ops"), (c) => c.text("ok"));

const get = async (path: string, token?: string) =>
  app.request(path, token ? { headers: { authorization: `Bearer ${token}` } } : {});

describe("authenticate and requireRole", () => {
  test("the identity comes from the token; no or a bad token is 401 in the error shape", async () => {
    const ok = await get("/who", await testToken("c1", "customer"));
    expect(await ok.json()).toMatchObject({ sub: "c1", role: "customer" });
    for (const token of [undefined, "x.y.z"]) {
      const refused = await get("/who", token);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
        "unauthenticated",
      );
    }
  });

  test("a route's roles: others get 403", async () => {
    expect((await get("/dispatch-only", await testToken("d1", "dispatcher"))).status).toBe(200);
    expect((await get("/dispatch-only", await testToken("o1", "ops"))).status).toBe(200);
    const refused = await get("/dispatch-only", await testToken("c1", "customer"));
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    expect(() => requireRole()).toThrow(/name at least one role/);
  });
});

const fixture = useRedisConnection("authenticate-test");

test("the client address is read only after a failed check or while some address is blocked", async () => {
  const verifier = createTokenVerifier({ secret: TEST_JWT_SECRET });
  const limiter = createAuthFailureLimiter({
    client: fixture.connection.client,
    limit: 2,
    windowMs: 60_000,
  });
  const address = uniqueId("address");
  let reads = 0;
  const limited = new Hono<GatewayEnv>();
  limited.onError(createErrorHandler(pino({ level: "silent" })));
  limited.use(
    authenticate(verifier, {
      limiter,
      clientAddress: () => {
        reads += 1;
        return address;
      },
    }),
  );
  limited.get("/who", (c) => c.text(c.get("identity").sub));
  const call = (token: string) =>
    limited.request("/who", { headers: { authorization: `Bearer ${token}` } });
  const known = await testToken("c1", "customer");
  for (let i = 0; i < 3; i++) expect((await call(known)).status).toBe(200);
  expect(reads).toBe(0);
  // Two failures spend the budget: each reads the address to count it there.
  expect((await call("x.y.z")).status).toBe(401);
  expect((await call("x.y.z")).status).toBe(401);
  expect(reads).toBe(2);
  // Now the address is blocked: every request's address is looked up first.
  expect((await call(known)).status).toBe(200);
  expect((await call(await testToken("c2", "customer"))).status).toBe(429);
  expect(reads).toBe(4);
});
