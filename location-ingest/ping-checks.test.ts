import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { GeoPingSchema } from "../proto/gen/delivery/tracking/v1/geo_pb";
import { DropReason } from "../proto/gen/delivery/tracking/v1/ingest_pb";
import type { PingLimits } from "./config";
import { checkPing, type LastFix, sanitizeMotion } from "./ping-checks";

const NOW = 1_800_000_000_000;
const limits: PingLimits = {
  maxFutureSkewMs: 5_000,
  maxLiveAgeMs: 120_000,
  maxBacklogAgeMs: 86_400_000,
  maxSpeedMps: 70,
  maxAccuracyM: 150,
};
const last: LastFix = { seq: 10n, lat: 51.5, lng: -0.12, recordedAtMs: NOW - 4_000 };

function ping(
  overrides: Partial<{
    lat: number;
    lng: number;
    accuracyM: number;
    ageMs: number;
    seq: bigint;
  }> = {},
) {
  const { lat = 51.5001, lng = -0.12, accuracyM = 8, ageMs = 0, seq = 11n } = overrides;
  return create(GeoPingSchema, {
    lat,
    lng,
    accuracyM,
    recordedAtMs: BigInt(NOW - ageMs),
    seq,
    speedMps: 3,
  });
}

describe("checkPing", () => {
  test("accepts a plausible next fix, and a first fix with no history", () => {
    expect(checkPing(ping(), last, limits, "live", NOW)).toBeUndefined();
    expect(checkPing(ping({ seq: 1n }), undefined, limits, "live", NOW)).toBeUndefined();
  });

  test.each([
    ["NaN latitude", { lat: Number.NaN }],
    ["infinite longitude", { lng: Number.POSITIVE_INFINITY }],
    ["latitude above 90", { lat: 90.5 }],
    ["latitude Redis GEO cannot index", { lat: 85.1 }],
    ["longitude below -180", { lng: -180.01 }],
  ])("drops %s as invalid coordinates", (_name, overrides) => {
    expect(checkPing(ping(overrides), last, limits, "live", NOW)).toBe(
      DropReason.INVALID_COORDINATES,
    );
  });

  test("drops timestamps beyond the allowed skew, but allows small skew", () => {
    expect(checkPing(ping({ ageMs: -4_000 }), last, limits, "live", NOW)).toBeUndefined();
    expect(checkPing(ping({ ageMs: -6_000 }), last, limits, "live", NOW)).toBe(
      DropReason.FUTURE_TIMESTAMP,
    );
  });

  test("live pings older than the live bound are stale; backlog ones are allowed longer", () => {
    const old = ping({ ageMs: 10 * 60_000, seq: 11n });
    expect(checkPing(old, undefined, limits, "live", NOW)).toBe(DropReason.STALE_TIMESTAMP);
    expect(checkPing(old, undefined, limits, "backlog", NOW)).toBeUndefined();
    const ancient = ping({ ageMs: 2 * 86_400_000 });
    expect(checkPing(ancient, undefined, limits, "backlog", NOW)).toBe(DropReason.STALE_TIMESTAMP);
  });

  test("repeated and out-of-order seq are dropped", () => {
    expect(checkPing(ping({ seq: 10n }), last, limits, "live", NOW)).toBe(DropReason.OUT_OF_ORDER);
    expect(checkPing(ping({ seq: 9n }), last, limits, "live", NOW)).toBe(DropReason.OUT_OF_ORDER);
  });

  test("a fix implying more than the speed bound is a teleport", () => {
    // ~1.1 km in 4 s is ~280 m/s.
    expect(checkPing(ping({ lat: 51.51 }), last, limits, "live", NOW)).toBe(DropReason.TELEPORT);
    // The same jump over 60 s is ~18 m/s: a scooter, not a teleport.
    const slower = { ...last, recordedAtMs: NOW - 60_000 };
    expect(checkPing(ping({ lat: 51.51 }), slower, limits, "live", NOW)).toBeUndefined();
  });

  test("accuracy worse than the bound, negative or NaN is poor", () => {
    expect(checkPing(ping({ accuracyM: 151 }), last, limits, "live", NOW)).toBe(
      DropReason.POOR_ACCURACY,
    );
    expect(checkPing(ping({ accuracyM: -1 }), last, limits, "live", NOW)).toBe(
      DropReason.POOR_ACCURACY,
    );
    expect(checkPing(ping({ accuracyM: Number.NaN }), last, limits, "live", NOW)).toBe(
      DropReason.POOR_ACCURACY,
    );
  });
});

describe("sanitizeMotion", () => {
  test("non-finite or negative speed becomes 0 and heading wraps into [0, 360)", () => {
    const motion = sanitizeMotion(create(GeoPingSchema, { speedMps: Number.NaN, headingDeg: -90 }));
    expect(motion).toEqual({ speedMps: 0, headingDeg: 270 });
    expect(sanitizeMotion(create(GeoPingSchema, { speedMps: -3, headingDeg: 725 }))).toEqual({
      speedMps: 0,
      headingDeg: 5,
    });
  });
});
