import { describe, expect, test } from "bun:test";
import { ConfigError, readBool, readHostPorts, readInt, readPort, readUrl } from "./env";
import { loadAuthConfig, loadRedisConfig } from "./shared-config";

describe("env readers", () => {
  test("defaults apply only when the variable is unset or blank", () => {
    expect(readInt({}, "N", 7)).toBe(7);
    expect(readInt({ N: "  " }, "N", 7)).toBe(7);
    expect(readInt({ N: "12" }, "N", 7)).toBe(12);
  });

  test("a bad value fails naming the variable and the rule", () => {
    expect(() => readInt({ N: "12x" }, "N", 7)).toThrow(
      new ConfigError("N", "must be an integer", "12x"),
    );
    expect(() => readPort({ GATEWAY_PORT: "70000" }, "GATEWAY_PORT", 1)).toThrow(
      /GATEWAY_PORT: must be between 0 and 65535/,
    );
    expect(() => readBool({ B: "yes" }, "B", false)).toThrow(/B: must be true, false/);
    expect(() => readUrl({ U: "ftp://x" }, "U", ["redis:"])).toThrow(/U: must use redis:/);
  });

  test("host:port lists parse and reject junk", () => {
    expect(readHostPorts({ L: "a:1, 127.0.0.1:6380" }, "L")).toEqual([
      { host: "a", port: 1 },
      { host: "127.0.0.1", port: 6380 },
    ]);
    expect(() => readHostPorts({ L: "a:1,b" }, "L")).toThrow(/L: must be a comma-separated list/);
    expect(() => readHostPorts({ L: "a:0" }, "L")).toThrow(ConfigError);
  });
});

describe("shared config", () => {
  test("a Redis cluster wins over REDIS_URL; neither is an error", () => {
    expect(loadRedisConfig({ REDIS_URL: "redis://h:1", REDIS_CLUSTER_NODES: "a:1,b:2" })).toEqual({
      mode: "cluster",
      nodes: [
        { host: "a", port: 1 },
        { host: "b", port: 2 },
      ],
    });
    expect(loadRedisConfig({ REDIS_URL: "redis://h:1" })).toEqual({
      mode: "standalone",
      url: "redis://h:1",
    });
    expect(() => loadRedisConfig({})).toThrow(/REDIS_URL: is required/);
  });

  test("auth needs a long enough secret, or a JWKS URL with the issuer and audience tokens must carry", () => {
    expect(() => loadAuthConfig({})).toThrow(/JWT_SECRET: is required/);
    expect(() => loadAuthConfig({ JWT_SECRET: "short" })).toThrow(/at least 32 characters/);
    const jwks = {
      JWT_JWKS_URL: "https://idp.example/jwks",
      JWT_ISSUER: "https://idp.example/",
      JWT_AUDIENCE: "delivery-edge",
    };
    const auth = loadAuthConfig(jwks);
    expect(auth.jwks).toEqual({
      url: "https://idp.example/jwks",
      timeoutMs: 1_500,
      refetchMinMs: 10_000,
      refreshMs: 600_000,
    });
    expect([auth.issuer, auth.audience]).toEqual(["https://idp.example/", "delivery-edge"]);
    expect(() => loadAuthConfig({ ...jwks, JWT_JWKS_TIMEOUT_MS: "0" })).toThrow(
      /JWT_JWKS_TIMEOUT_MS/,
    );
    // The provider's keys sign its ID tokens and other APIs' tokens too: without both checks
    // the edge would take them, so a JWKS without either does not start.
    for (const name of ["JWT_ISSUER", "JWT_AUDIENCE"] as const) {
      for (const value of [undefined, " "]) {
        expect(() => loadAuthConfig({ ...jwks, [name]: value })).toThrow(
          `${name}: is required with JWT_JWKS_URL`,
        );
      }
    }
    // A development secret alone needs neither.
    expect(loadAuthConfig({ JWT_SECRET: "x".repeat(32) }).issuer).toBeUndefined();
  });
});
