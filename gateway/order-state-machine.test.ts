import { describe, expect, test } from "bun:test";
import type { Identity, Role } from "../core/auth/identity";
import type { EdgeError } from "../core/errors/edge-error";
import { ORDER_STATUSES } from "../core/order-status";
import type { OrderRecord } from "../core/redis/order-record";
import { DROPOFF, PICKUP } from "../test/support/positions";
import { planStep } from "./order-state-machine";

const order: OrderRecord = {
  orderId: "o1",
  customerId: "c1",
  riderId: "r1",
  city: "london",
  restaurantId: "rest-1",
  pickup: PICKUP,
  dropoff: DROPOFF,
  status: "ASSIGNED",
  version: 2,
};
const who = (role: Role, sub: string): Identity => ({ role, sub, exp: 9_999_999_999 });
const actors = {
  customer: who("customer", "c1"),
  rider: who("rider", "r1"),
  otherRider: who("rider", "r2"),
  restaurant: who("restaurant", "rest-1"),
  otherRestaurant: who("restaurant", "rest-2"),
  dispatcher: who("dispatcher", "d1"),
  ops: who("ops", "o1"),
};

function outcome(to: string, actor: Identity): string {
  try {
    return `from ${planStep(to, actor, order).legalFrom.join("|")}`;
  } catch (error) {
    return (error as EdgeError).code;
  }
}

describe("planStep: every step for every actor", () => {
  test.each([
    ["READY", { restaurant: "from ASSIGNED", ops: "from ASSIGNED" }],
    ["PICKED_UP", { rider: "from READY", ops: "from READY" }],
    ["DELIVERED", { rider: "from PICKED_UP", ops: "from PICKED_UP" }],
    ["CANCELLED", { dispatcher: "from CONFIRMED|ASSIGNED", ops: "from CONFIRMED|ASSIGNED" }],
  ] as const)("%s", (to, allowed) => {
    for (const [name, actor] of Object.entries(actors)) {
      expect(`${name}: ${outcome(to, actor)}`).toBe(
        `${name}: ${(allowed as Record<string, string>)[name] ?? "forbidden"}`,
      );
    }
  });

  test("ASSIGNED and CONFIRMED are never set by this route, not even by ops; unknown statuses are 400", () => {
    for (const actor of Object.values(actors)) {
      expect(outcome("ASSIGNED", actor)).toBe("illegal_transition");
      expect(outcome("CONFIRMED", actor)).toBe("illegal_transition");
      expect(outcome("LOST", actor)).toBe("bad_request");
    }
    expect(ORDER_STATUSES).toHaveLength(6);
  });
});
