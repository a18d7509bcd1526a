import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import { DropReason } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { PingLimits } from "../config";
import { checkPing, type LastFix, positionOf } from "./ping-checks";

const NOW = 1_800_000_000_000;
const limits: PingLimits = {
  maxFutureSkewMs: 5_000,
  maxLiveAgeMs: 120_000,
  maxBacklogAgeMs: 86_400_000,
  maxSpeedMps: 70,
  maxAccuracyM: 150,
};
const last: LastFix = {
  seq: 10n,
  lat: 51.5,
  lng: -0.12,
  recordedAtMs: NOW - 4_000,
  receivedAtMs: NOW - 3_900,
};

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
    expect(checkPing(ping({ seq: 10n }), last, limits, "backlog", NOW)).toBe(
      DropReason.OUT_OF_ORDER,
    );
  });

  test("no seq locks a rider out past the live-age bound: after it any seq follows (a restart)", () => {
    const stuck = { ...last, seq: 2n ** 64n - 1n };
    const reinstalled = ping({ seq: 1n, lat: 51.5 });
    expect(checkPing(reinstalled, stuck, limits, "live", NOW)).toBe(DropReason.OUT_OF_ORDER);
    const later = NOW - 3_900 + limits.maxLiveAgeMs + 1;
    const fresh = create(GeoPingSchema, { ...reinstalled, recordedAtMs: BigInt(later) });
    expect(checkPing(fresh, stuck, limits, "live", later)).toBeUndefined();
    // Within one upload, seq only ever increases.
    expect(checkPing(fresh, stuck, limits, "backlog", later)).toBe(DropReason.OUT_OF_ORDER);
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

describe("positionOf", () => {
  const rider = { riderId: "r1", city: "london" };
  const motion = (speedMps: number, headingDeg: number) => {
    const { speedMps: speed, headingDeg: heading } = positionOf(
      rider,
      create(GeoPingSchema, { speedMps, headingDeg }),
      NOW,
    );
    return { speed, heading };
  };

  test("non-finite or negative speed becomes 0 and heading wraps into [0, 360)", () => {
    expect(motion(Number.NaN, -90)).toEqual({ speed: 0, heading: 270 });
    expect(motion(-3, 725)).toEqual({ speed: 0, heading: 5 });
    expect(motion(3, Number.POSITIVE_INFINITY)).toEqual({ speed: 3, heading: 0 });
  });

  test("float fields hold float32 values, as the proto's binary form would", () => {
    const { heading } = motion(1, -0.1);
    expect(heading).toBe(Math.fround(heading));
    expect(heading).toBeCloseTo(359.9, 4);
  });
});
