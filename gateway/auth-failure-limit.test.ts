import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../test/support/gateway";
import { type RedisServer, startRedis } from "../test/support/redis-server";
import { testToken, uniqueId } from "../test/support/tokens";

let redis: RedisServer;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.stop();
  await redis?.stop();
});

async function gatewayWith(env: Record<string, string>): Promise<TestGateway> {
  const gateway = await startTestGateway({
    REDIS_URL: redis.url,
    RATE_LIMIT_REQUESTS: "100000",
    AUTH_FAILURE_LIMIT: "20",
    AUTH_FAILURE_WINDOW_MS: "60000",
    ...env,
  });
  gateways.push(gateway);
  return gateway;
}

/** A token-shaped string no key signed: what a flood of forged tokens looks like. */
const forged = () =>
  `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: uniqueId("x"), role: "ops" })).toString("base64url")}.${uniqueId("sig")}`;

const ask = (gateway: TestGateway, token: string, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/ops/live?city=london`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
  });

describe("failed authentication is rate limited per client address", () => {
  test("a forged-token flood: 20 × 401, then 429 with Retry-After; a token already verified from the same address still works", async () => {
    const gateway = await gatewayWith({});
    const known = await testToken("ops-1", "ops");
    expect((await ask(gateway, known)).status).toBe(200);
    const statuses: number[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 30 }, () => ask(gateway, forged())));
      statuses.push(...answers.map((r) => r.status));
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(280);
    const limited = await ask(gateway, forged());
    const body = (await limited.json()) as { error: { code: string; requestId: string } };
    expect([limited.status, body.error.code]).toEqual([429, "rate_limited"]);
    expect(body.error.requestId).toBe(limited.headers.get("x-request-id") ?? "missing");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // While blocked, a missing token and a token this node never verified are refused unchecked.
    expect((await fetch(`${gateway.url}/v1/ops/live?city=london`)).status).toBe(429);
    expect((await ask(gateway, await testToken("ops-2", "ops"))).status).toBe(429);
    expect((await ask(gateway, known)).status).toBe(200);
    // Each 429 is counted for the operators (280 + the 3 above); a 401 is not a limit.
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toContain(
      'edge_gateway_rate_limited_total{limit="failed_auth",tier="gateway"} 283',
    );
    // The count lives in Redis: another gateway node sees the address over its budget at once.
    const other = await gatewayWith({});
    expect((await ask(other, forged())).status).toBe(429);
    // Without the opt-in header, X-Forwarded-For is the client's word and ignored.
    expect((await ask(gateway, forged(), { "x-forwarded-for": "10.9.9.9" })).status).toBe(429);
  });

  test("behind a balancer (GATEWAY_CLIENT_ADDRESS_HEADER): the balancer's rightmost entry is the address, the client's own entries are ignored", async () => {
    const gateway = await gatewayWith({ GATEWAY_CLIENT_ADDRESS_HEADER: "X-Forwarded-For" });
    const attacker = { "x-forwarded-for": "203.0.113.7" };
    for (let i = 0; i < 20; i++) expect((await ask(gateway, forged(), attacker)).status).toBe(401);
    expect((await ask(gateway, forged(), attacker)).status).toBe(429);
    // Claiming another address to the left of the balancer's entry does not help.
    expect(
      (await ask(gateway, forged(), { "x-forwarded-for": "198.51.100.1, 203.0.113.7" })).status,
    ).toBe(429);
    // Another customer behind the same balancer is unaffected.
    const customer = await testToken("ops-3", "ops");
    expect((await ask(gateway, customer, { "x-forwarded-for": "198.51.100.2" })).status).toBe(200);
  });

  test("an IPv6 client is one /64: forged tokens from many addresses of one prefix share a budget, as one IPv4 address's do; an IPv4-mapped address is its IPv4 one", async () => {
    const gateway = await gatewayWith({ GATEWAY_CLIENT_ADDRESS_HEADER: "X-Forwarded-For" });
    // A phone or a cloud VM gets a whole /64: 2^64 addresses it may send from.
    const prefix = `2001:db8:${(Math.floor(Math.random() * 0xfff0) + 1).toString(16)}:7`;
    const from = (address: string) => ({ "x-forwarded-for": address });
    for (let i = 1; i <= 20; i++)
      expect((await ask(gateway, forged(), from(`${prefix}:${i.toString(16)}::1`))).status).toBe(
        401,
      );
    // Any other spelling of an address in that /64 (compressed, with a zone) is blocked too.
    for (const address of [`${prefix}::ab`, `${prefix}:0:0:0:ff%eth0`])
      expect((await ask(gateway, forged(), from(address))).status).toBe(429);
    // The next /64 is someone else.
    expect((await ask(gateway, forged(), from(`${prefix.slice(0, -1)}8::1`))).status).toBe(401);
    const v4 = `192.0.2.${Math.floor(Math.random() * 200) + 20}`;
    for (let i = 0; i < 20; i++)
      expect((await ask(gateway, forged(), from(`::ffff:${v4}`))).status).toBe(401);
    expect((await ask(gateway, forged(), from(v4))).status).toBe(429);
  });

  test("expired tokens and missing ones never count: a carrier NAT's sleeping apps do not block their address; forged tokens from it still do", async () => {
    const gateway = await gatewayWith({ GATEWAY_CLIENT_ADDRESS_HEADER: "X-Forwarded-For" });
    const nat = { "x-forwarded-for": `198.51.100.${Math.floor(Math.random() * 200) + 20}` };
    const expired = await Promise.all(
      Array.from({ length: 60 }, (_, i) => testToken(`c-${i}`, "customer", undefined, -5)),
    );
    const answers = await Promise.all(expired.map((token) => ask(gateway, token, nat)));
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as {
      error: { code: string; message: string };
    }[];
    expect(new Set(answers.map((r) => r.status))).toEqual(new Set([401]));
    expect(new Set(bodies.map((b) => `${b.error.code}: ${b.error.message}`))).toEqual(
      new Set(["unauthenticated: token expired"]),
    );
    for (let i = 0; i < 40; i++) {
      const missing = await fetch(`${gateway.url}/v1/ops/live?city=london`, { headers: nat });
      expect(missing.status).toBe(401);
    }
    // The address's whole budget is left for forged tokens: 20 × 401, then 429.
    for (let i = 0; i < 20; i++) expect((await ask(gateway, forged(), nat)).status).toBe(401);
    expect((await ask(gateway, forged(), nat)).status).toBe(429);
  });
});
