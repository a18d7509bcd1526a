import { describe, expect, test } from "bun:test";
import type { IntervalPolicy } from "../config";
import { type MotionSample, nextIntervalMs } from "./interval-policy";

const policy: IntervalPolicy = {
  parkedMs: 30_000,
  movingMs: 4_000,
  turnMs: 1_000,
  nearStopMs: 2_000,
  parkedBelowMps: 1,
  sharpTurnDeg: 45,
  nearStopM: 400,
};
const here = { lat: 51.5, lng: -0.12 };
const sample = (speedMps: number, headingDeg: number): MotionSample => ({
  ...here,
  speedMps,
  headingDeg,
});

describe("nextIntervalMs", () => {
  test("parked riders ping rarely, moving riders every few seconds", () => {
    expect(nextIntervalMs(policy, sample(0.2, 0), undefined, [])).toBe(30_000);
    expect(nextIntervalMs(policy, sample(8, 90), sample(8, 80), [])).toBe(4_000);
  });

  test("a sharp turn while moving asks for the next fix at once", () => {
    expect(nextIntervalMs(policy, sample(8, 180), sample(8, 90), [])).toBe(1_000);
    // Turning across north (350 -> 40 is 50 degrees) counts too.
    expect(nextIntervalMs(policy, sample(8, 40), sample(8, 350), [])).toBe(1_000);
    // Heading noise while parked is not a turn.
    expect(nextIntervalMs(policy, sample(0.1, 180), sample(0.1, 0), [])).toBe(30_000);
  });

  test("near a pickup or drop-off of an active order it pings faster", () => {
    const stop = { lat: 51.501, lng: -0.12 }; // ~110 m away
    const far = { lat: 51.6, lng: -0.12 };
    expect(nextIntervalMs(policy, sample(8, 90), sample(8, 90), [stop])).toBe(2_000);
    expect(nextIntervalMs(policy, sample(0, 90), undefined, [stop])).toBe(2_000);
    expect(nextIntervalMs(policy, sample(8, 90), sample(8, 90), [far])).toBe(4_000);
  });
});
