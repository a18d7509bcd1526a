import { expect, test } from "bun:test";
import { loadTrackingConfig, trackingDrainTimeoutMs } from "./config";

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

test("the drain's cut is 15 s unless the node's TTL and tick make its own worst case longer", () => {
  // The defaults (5 s TTL, 1 s ticks): 5 s + 3 s + 3 s + 5 s.
  expect(trackingDrainTimeoutMs(load({}))).toBe(16_000);
  // TTL + 3 ticks + 1 s (live figures' stop) + 1 s (requests under way) + 1 s (QUIT) + 5 s of slack.
  expect(
    trackingDrainTimeoutMs(
      load({ TRACKING_NODE_TTL_MS: "12000", TRACKING_RING_REFRESH_MS: "2000" }),
    ),
  ).toBe(12_000 + 6_000 + 3_000 + 5_000);
  expect(
    trackingDrainTimeoutMs(load({ TRACKING_NODE_TTL_MS: "1000", TRACKING_HEARTBEAT_MS: "100" })),
  ).toBe(15_000);
});
