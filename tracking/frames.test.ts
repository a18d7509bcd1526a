import { describe, expect, test } from "bun:test";
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import {
  movedEventJson,
  positionEventJson,
  statusEventJson,
} from "../core/messages/tracking-events";
import { TrackingEventSchema } from "../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { SOME_POSITION } from "../test/support/positions";
import { eventFrame } from "./frames";

const GEOFENCE = JSON.stringify({
  orderId: "o1",
  geofence: { fence: "FENCE_ENTERED_DROPOFF", riderId: "r1", atMs: "1700000000000" },
});
const POSITION = positionEventJson("o1", { ...SOME_POSITION, seq: 2n ** 63n + 5n });

describe("tracking frames", () => {
  test("each event goes out as its JSON unchanged, as the same TrackingEvent in binary, and in the v1 JSON shape", () => {
    const events = [
      POSITION,
      statusEventJson("o1", { status: "PICKED_UP", version: 4, riderId: "r1" }),
      movedEventJson("o1", "ws://edge/t2"),
      GEOFENCE,
    ];
    for (const json of events) {
      const frame = eventFrame("o1", json);
      if (!frame) throw new Error(`not parsed: ${json}`);
      expect(frame.data("json")).toBe(json);
      expect(fromBinary(TrackingEventSchema, frame.data("proto") as Uint8Array)).toEqual(
        fromJsonString(TrackingEventSchema, json),
      );
    }
    const legacy = (json: string) =>
      JSON.parse(eventFrame("o1", json)?.data("legacyJson") as string);
    expect(legacy(GEOFENCE)).toEqual({
      type: "geofence",
      orderId: "o1",
      riderId: "r1",
      fence: "entered_dropoff",
      at: 1_700_000_000_000,
    });
    expect(legacy(POSITION)).toEqual({
      type: "position",
      orderId: "o1",
      riderId: SOME_POSITION.riderId,
      lat: SOME_POSITION.lat,
      lng: SOME_POSITION.lng,
      heading: SOME_POSITION.headingDeg,
      speed: SOME_POSITION.speedMps,
      recordedAt: SOME_POSITION.recordedAtMs,
      seq: Number(2n ** 63n + 5n),
      receivedAt: SOME_POSITION.receivedAtMs,
    });
  });

  test("a position's seq is read exactly, past 2^53", () => {
    const frame = eventFrame("o1", POSITION);
    expect(frame?.event).toEqual({
      kind: "position",
      riderId: SOME_POSITION.riderId,
      seq: 2n ** 63n + 5n,
      receivedAtMs: SOME_POSITION.receivedAtMs,
    });
  });

  test("malformed events, unknown kinds and fences, and another order's events are refused, not forwarded", () => {
    const position = JSON.parse(POSITION);
    for (const payload of [
      "{",
      "null",
      "[]",
      POSITION.replace('"o1"', '"o2"'),
      JSON.stringify({ orderId: "o1" }),
      JSON.stringify({ orderId: "o1", teleport: {} }),
      JSON.stringify({ ...position, moved: { url: "ws://x" } }),
      JSON.stringify({ ...position, position: { ...position.position, seq: 5.5 } }),
      JSON.stringify({
        ...position,
        position: { ...position.position, seq: "18446744073709551616" },
      }),
      JSON.stringify({ ...position, position: { ...position.position, lat: "51" } }),
      JSON.stringify({ orderId: "o1", geofence: { fence: "toString", riderId: "r1", atMs: "1" } }),
      JSON.stringify({ orderId: "o1", geofence: { fence: "FENCE_LEFT_PICKUP", atMs: "1" } }),
      JSON.stringify({
        orderId: "o1",
        geofence: { fence: "FENCE_LEFT_PICKUP", riderId: "r1", atMs: "1.5" },
      }),
      JSON.stringify({ orderId: "o1", status: { version: "3" } }),
      JSON.stringify({ orderId: "o1", status: { status: "READY", version: "-1" } }),
    ])
      expect(eventFrame("o1", payload)).toBeUndefined();
  });

  test("fields a newer publisher added still go to JSON watchers and are dropped from binary frames", () => {
    const json = JSON.stringify({ ...JSON.parse(GEOFENCE), futureField: 1 });
    const frame = eventFrame("o1", json);
    expect(frame?.data("json")).toBe(json);
    expect(fromBinary(TrackingEventSchema, frame?.data("proto") as Uint8Array).orderId).toBe("o1");
  });
});
