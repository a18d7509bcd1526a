import { expect, test } from "bun:test";
import { planOrderView } from "./order-view-plan";

test("a token the track lookup refuses 403 (the order's restaurant) still gets the status timeline, without the map", () => {
  expect(planOrderView(200, 403)).toEqual({ show: "status only" });
});

test("both lookups answered: the map and the timeline", () => {
  expect(planOrderView(200, 200)).toEqual({ show: "map" });
});

test("a refused status lookup refuses the page whatever the track lookup said; any other track failure too", () => {
  expect(planOrderView(404, 200)).toEqual({ show: "refusal", from: "status" });
  expect(planOrderView(403, 403)).toEqual({ show: "refusal", from: "status" });
  expect(planOrderView(401, 401)).toEqual({ show: "refusal", from: "status" });
  expect(planOrderView(200, 401)).toEqual({ show: "refusal", from: "track" });
  expect(planOrderView(200, 503)).toEqual({ show: "refusal", from: "track" });
});
