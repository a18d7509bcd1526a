import { expect, test } from "bun:test";
import { loadTrackingConfig } from "./config";

const BASE = { REDIS_URL: "redis://127.0.0.1:6379", JWT_SECRET: "x".repeat(32) };
const load = (env: Record<string, string>) => loadTrackingConfig({ ...BASE, ...env });

test("a node beats at least twice per TRACKING_NODE_TTL_MS: one late beat must not drop it from every ring", () => {
  expect(load({})).toMatchObject({ heartbeatMs: 1_000, nodeTtlMs: 5_000 });
  expect(load({ TRACKING_HEARTBEAT_MS: "2500" }).heartbeatMs).toBe(2_500);
  // A beat as slow as the TTL: the node falls out of the rings (and its id's claim lapses)
  // whenever a beat is a little late.
  expect(() => load({ TRACKING_HEARTBEAT_MS: "5000" })).toThrow(
    /^TRACKING_HEARTBEAT_MS: must be at most half of TRACKING_NODE_TTL_MS \(5000\)/,
  );
  expect(() => load({ TRACKING_HEARTBEAT_MS: "2501" })).toThrow(/^TRACKING_HEARTBEAT_MS/);
  expect(() => load({ TRACKING_NODE_TTL_MS: "1500" })).toThrow(/^TRACKING_HEARTBEAT_MS/);
  expect(load({ TRACKING_NODE_TTL_MS: "1500", TRACKING_HEARTBEAT_MS: "750" }).nodeTtlMs).toBe(
    1_500,
  );
});
