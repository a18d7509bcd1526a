import { describe, expect, test } from "bun:test";
import { DROPOFF, north, PICKUP } from "../../test/support/positions";
import { createGeofenceTracker } from "./geofence-tracker";

describe("the geofence tracker", () => {
  const policy = { pickupRadiusM: 75, dropoffRadiusM: 75, exitMarginM: 25, autoStatus: false };
  const ordersOf = (orderIds: string[]) =>
    orderIds.map((orderId) => ({ orderId, pickup: PICKUP, dropoff: DROPOFF }));

  test("leaving the pickup counts once the rider is past the radius plus the margin", () => {
    const tracker = createGeofenceTracker(policy);
    const rider = ordersOf(["o1"]);
    const seen = [0, 60, 90, 70, 95, 110, 200].map((m) =>
      tracker.observe(rider, north(PICKUP, m), 5),
    );
    // Inside at 0 m; 90/70/95 m are in the margin band (no flapping); out at 110 m.
    expect(seen).toEqual([[], [], [], [], [], [{ orderId: "o1", fence: "left_pickup" }], []]);
  });

  test("a rider first seen outside the pickup never 'leaves' it; arriving at the drop-off counts from the first fix", () => {
    const tracker = createGeofenceTracker(policy);
    const rider = ordersOf(["o1"]);
    expect(tracker.observe(rider, north(PICKUP, 300), 5)).toEqual([]);
    expect(tracker.observe(rider, north(DROPOFF, -200), 5)).toEqual([]);
    expect(tracker.observe(rider, north(DROPOFF, -50), 5)).toEqual([
      { orderId: "o1", fence: "entered_dropoff" },
    ]);
    expect(tracker.observe(rider, north(DROPOFF, -10), 5)).toEqual([]);
    // A new session (a reconnect) has a new tracker: it knows nothing of where the rider was.
    expect(createGeofenceTracker(policy).observe(rider, DROPOFF, 5)).toEqual([
      { orderId: "o1", fence: "entered_dropoff" },
    ]);
  });

  test("a fix less precise than the exit margin is not judged", () => {
    const tracker = createGeofenceTracker(policy);
    const rider = ordersOf(["o1"]);
    tracker.observe(rider, PICKUP, 5);
    // Waiting indoors, one fix drifts 300 m with a 120 m accuracy radius.
    expect(tracker.observe(rider, north(PICKUP, 300), 120)).toEqual([]);
    expect(tracker.observe(rider, north(PICKUP, 10), 5)).toEqual([]);
    expect(tracker.observe(rider, north(PICKUP, 300), 5)).toEqual([
      { orderId: "o1", fence: "left_pickup" },
    ]);
  });

  test("an order that is no longer active is forgotten", () => {
    const tracker = createGeofenceTracker(policy);
    const rider = ordersOf(["o1"]);
    tracker.observe(rider, PICKUP, 5);
    expect(tracker.observe([], north(PICKUP, 500), 5)).toEqual([]);
    // Active again: it was forgotten, so it is not seen leaving.
    expect(tracker.observe(rider, north(PICKUP, 600), 5)).toEqual([]);
  });
});
