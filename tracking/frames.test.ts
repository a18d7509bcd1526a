import { describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import {
  GeofenceEvent_Fence,
  TrackingEventSchema,
} from "../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { outgoingFrame, parseTrackingFrame } from "./frames";

describe("tracking frames", () => {
  test("a geofence event from the channel goes out as JSON unchanged and as its protobuf case", () => {
    const payload = JSON.stringify({
      type: "geofence",
      orderId: "o1",
      riderId: "r1",
      fence: "entered_dropoff",
      at: 1_700_000_000_000,
    });
    const frame = parseTrackingFrame(payload);
    if (!frame) throw new Error("not parsed");
    const outgoing = outgoingFrame(frame, { json: payload });
    expect(outgoing.json).toBe(payload);
    const event = fromBinary(TrackingEventSchema, outgoing.proto());
    expect(event.orderId).toBe("o1");
    expect(event.event.case).toBe("geofence");
    if (event.event.case !== "geofence") throw new Error("unreachable");
    expect(event.event.value.fence).toBe(GeofenceEvent_Fence.ENTERED_DROPOFF);
    expect(event.event.value.riderId).toBe("r1");
    expect(event.event.value.atMs).toBe(1_700_000_000_000n);
  });

  test("unknown kinds and fences are refused, not forwarded", () => {
    for (const payload of [
      "{",
      JSON.stringify({ type: "geofence", orderId: "o1", riderId: "r1", at: 1, fence: "toString" }),
      JSON.stringify({ type: "geofence", orderId: "o1", riderId: "r1", fence: "left_pickup" }),
      JSON.stringify({
        type: "geofence",
        orderId: "o1",
        riderId: "r1",
        at: 1.5,
        fence: "left_pickup",
      }),
      JSON.stringify({ type: "teleport", orderId: "o1" }),
      JSON.stringify({ type: "status", status: "READY" }),
    ])
      expect(parseTrackingFrame(payload)).toBeUndefined();
  });
});
