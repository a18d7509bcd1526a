import { expect, test } from "bun:test";
import { loadGatewayConfig } from "./config";

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
