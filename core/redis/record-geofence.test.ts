import { describe, expect, test } from "bun:test";
import { orderOutboxEvents, seedOrder } from "../../test/support/orders";
import { useRedisConnection } from "../../test/support/redis-connection";
import { uniqueId } from "../../test/support/tokens";
import { keys } from "./keys";
import { recordGeofence } from "./order-scripts";

const fixture = useRedisConnection("record-geofence-test");

async function orderIn(status: string) {
  const orderId = uniqueId("order");
  const riderId = uniqueId("rider");
  await seedOrder(fixture.connection.client, { orderId, customerId: "c1", riderId, status });
  return { orderId, riderId };
}

const outboxEvents = (orderId: string) => orderOutboxEvents(fixture.connection.client, orderId);

describe("record-geofence.lua", () => {
  test("leaving the pickup of a READY order moves it to PICKED_UP when automatic, once", async () => {
    const { orderId, riderId } = await orderIn("READY");
    const crossing = { orderId, riderId, fence: "left_pickup" as const, atMs: 1_000 };
    expect(await recordGeofence(fixture.connection, { ...crossing, autoStatus: true })).toBe(
      "status_changed",
    );
    expect(await recordGeofence(fixture.connection, { ...crossing, autoStatus: true })).toBe(
      "not_applicable",
    );
    const { client } = fixture.connection;
    expect(await client.hmget(keys.order(orderId), "status", "version")).toEqual([
      "PICKED_UP",
      "3",
    ]);
    expect(await outboxEvents(orderId)).toEqual([
      { orderId, geofence: { fence: "FENCE_LEFT_PICKUP", riderId, atMs: "1000" } },
      { orderId, status: { status: "PICKED_UP", version: "3", riderId } },
    ]);
  });

  test("without automatic status the crossing is an event only, recorded once", async () => {
    const { orderId, riderId } = await orderIn("PICKED_UP");
    const crossing = {
      orderId,
      riderId,
      fence: "entered_dropoff" as const,
      atMs: 2_000,
      autoStatus: false,
    };
    expect(await recordGeofence(fixture.connection, crossing)).toBe("recorded");
    expect(await recordGeofence(fixture.connection, { ...crossing, atMs: 3_000 })).toBe(
      "already_recorded",
    );
    expect(await fixture.connection.client.hget(keys.order(orderId), "status")).toBe("PICKED_UP");
    expect(await outboxEvents(orderId)).toEqual([
      { orderId, geofence: { fence: "FENCE_ENTERED_DROPOFF", riderId, atMs: "2000" } },
    ]);
  });

  test("crossings by another rider, of unknown orders, or in other statuses change nothing", async () => {
    const assigned = await orderIn("ASSIGNED");
    const base = { atMs: 1, autoStatus: true };
    expect(
      await recordGeofence(fixture.connection, {
        ...base,
        orderId: assigned.orderId,
        riderId: "someone-else",
        fence: "left_pickup",
      }),
    ).toBe("not_assigned");
    expect(
      await recordGeofence(fixture.connection, {
        ...base,
        orderId: assigned.orderId,
        riderId: assigned.riderId,
        fence: "left_pickup",
      }),
    ).toBe("not_applicable");
    expect(
      await recordGeofence(fixture.connection, {
        ...base,
        orderId: uniqueId("missing"),
        riderId: assigned.riderId,
        fence: "entered_dropoff",
      }),
    ).toBe("not_found");
    expect(await fixture.connection.client.hget(keys.order(assigned.orderId), "status")).toBe(
      "ASSIGNED",
    );
    expect(await outboxEvents(assigned.orderId)).toEqual([]);
  });
});
