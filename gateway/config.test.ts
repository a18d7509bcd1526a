import { expect, test } from "bun:test";
import { gatewayDrainTimeoutMs, loadGatewayConfig } from "./config";

const BASE = { REDIS_URL: "redis://127.0.0.1:6379", JWT_SECRET: "x".repeat(32) };
const corsOrigins = (value?: string) =>
  loadGatewayConfig({ ...BASE, ...(value === undefined ? {} : { CORS_ORIGINS: value }) })
    .corsOrigins;

test("CORS_ORIGINS: * by default (blank too), or origins as browsers send them", () => {
  expect(corsOrigins()).toEqual(["*"]);
  expect(corsOrigins("  ")).toEqual(["*"]);
  expect(corsOrigins("https://app.example.com, http://127.0.0.1:3000")).toEqual([
    "https://app.example.com",
    "http://127.0.0.1:3000",
  ]);
});

test("CORS_ORIGINS: a value no browser's Origin can equal stops the gateway, naming the variable", () => {
  for (const value of ["app.example.com", "https://app.example.com/", "https://app.example.com/x"])
    expect(() => corsOrigins(value)).toThrow(/^CORS_ORIGINS: must be \* or origins/);
});

test("the drain's cut: 15 s, or the drain's own worst case and 5 s when longer (+3 s with the outbox relay)", () => {
  const cut = (env: Record<string, string>) =>
    gatewayDrainTimeoutMs(loadGatewayConfig({ ...BASE, ...env }));
  expect(cut({})).toBe(15_000);
  expect(cut({ KAFKA_BROKERS: "127.0.0.1:9092" })).toBe(15_000);
  // 20 s for the requests, 1 s more for them, 1 s for QUIT, 5 s of slack.
  expect(cut({ UPSTREAM_TIMEOUT_MS: "20000" })).toBe(27_000);
  // And 3 s for the relay's stop (its pass, the leases' give-back, the producer's disconnect).
  expect(cut({ UPSTREAM_TIMEOUT_MS: "20000", KAFKA_BROKERS: "127.0.0.1:9092" })).toBe(30_000);
});
