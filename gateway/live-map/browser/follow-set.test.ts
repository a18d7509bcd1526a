import { describe, expect, test } from "bun:test";
import { createFollowSet, type FollowCandidate, MISSING_POLLS } from "./follow-set";

const order = (n: number, status = "ASSIGNED"): FollowCandidate => ({
  orderId: `o${n}`,
  status,
  riderId: `r${n}`,
});

describe("the live map's follow set", () => {
  test("keeps the same follows however the view is reordered, until one ends", () => {
    const follows = createFollowSet(3);
    const first = follows.update([order(1), order(2), order(3), order(4), order(5)]);
    expect(first).toEqual({ start: ["o1", "o2", "o3"], stop: [] });
    // Riders ping in another order every poll: nothing moves.
    for (const view of [
      [order(5), order(4), order(3), order(2), order(1)],
      [order(3), order(5), order(1), order(4), order(2)],
      [order(2), order(6), order(4), order(1), order(3), order(5)],
    ])
      expect(follows.update(view)).toEqual({ start: [], stop: [] });
    // o2 is delivered: its slot goes to the order known longest (o4), not the newest.
    expect(
      follows.update([order(6), order(2, "DELIVERED"), order(5), order(4), order(1), order(3)]),
    ).toEqual({ start: ["o4"], stop: ["o2"] });
    expect(follows.orderIds.sort()).toEqual(["o1", "o3", "o4"]);
  });

  test("an end seen on the socket stops the follow at the next poll; unassigned orders wait", () => {
    const follows = createFollowSet(2);
    const waiting = { orderId: "o9", status: "CONFIRMED" };
    expect(follows.update([waiting, order(1), order(2), order(3)]).start).toEqual(["o1", "o2"]);
    follows.markEnded("o1");
    // The view still says ASSIGNED (it lags the socket): the end wins.
    expect(follows.update([waiting, order(1), order(2), order(3)])).toEqual({
      start: ["o3"],
      stop: ["o1"],
    });
    expect(follows.update([order(1), order(2), order(3)])).toEqual({ start: [], stop: [] });
  });

  test("a follow that leaves the view is kept until it has been gone for a while", () => {
    const follows = createFollowSet(1);
    follows.update([order(1), order(2)]);
    for (let poll = 1; poll < MISSING_POLLS; poll++)
      expect(follows.update([order(2)])).toEqual({ start: [], stop: [] });
    expect(follows.update([order(2)])).toEqual({ start: ["o2"], stop: ["o1"] });
  });

  test("the picked order is followed on top of the others and stays after it ends", () => {
    const follows = createFollowSet(2);
    follows.update([order(1), order(2), order(3)]);
    expect(follows.pick("o3")).toEqual({ start: ["o3"], stop: [] });
    expect(follows.orderIds[0]).toBe("o3");
    expect(follows.update([order(1), order(2), order(3, "DELIVERED")])).toEqual({
      start: [],
      stop: [],
    });
    // Picking another lets the extra one go.
    expect(follows.pick("o1")).toEqual({ start: [], stop: ["o3"] });
    expect(follows.orderIds).toEqual(["o1", "o2"]);
  });
});
