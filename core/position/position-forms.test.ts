import { describe, expect, test } from "bun:test";
import { create, fromBinary, fromJsonString } from "@bufbuild/protobuf";
import {
  type LocationRecord,
  LocationRecordSchema,
} from "../../proto/gen/delivery/tracking/v1/location_record_pb";
import {
  type PositionEvent,
  PositionEventSchema,
  TrackingEventSchema,
} from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { randomMessage, seededRandom } from "../../test/support/random-message";
import { positionEventJson } from "../messages/tracking-events";
import { encodeLocationRecord, encodeStoredPosition, parseStoredPosition } from "./position-forms";
import type { RiderPosition } from "./rider-position";

// Each proto message mapped field by field onto the one position shape: a
// field added to the proto is set by randomMessage, has no place here, and
// so makes the round trips below unequal.
function fromRecord(record: LocationRecord): RiderPosition {
  const ping = record.ping;
  if (!ping) throw new Error("record without a ping");
  return {
    riderId: record.riderId,
    city: record.city,
    lat: ping.lat,
    lng: ping.lng,
    accuracyM: ping.accuracyM,
    speedMps: ping.speedMps,
    headingDeg: ping.headingDeg,
    recordedAtMs: Number(ping.recordedAtMs),
    seq: ping.seq,
    receivedAtMs: Number(record.receivedAtMs),
  };
}

function fromPositionEvent(event: PositionEvent): RiderPosition {
  return {
    riderId: event.riderId,
    city: "not-in-the-event",
    lat: event.lat,
    lng: event.lng,
    accuracyM: 1,
    speedMps: event.speedMps,
    headingDeg: event.headingDeg,
    recordedAtMs: Number(event.recordedAtMs),
    seq: event.seq,
    receivedAtMs: Number(event.receivedAtMs),
  };
}

const CASES = 300;

describe("the forms of a position, every field of their schemas with random values", () => {
  test("rider:{r}:pos is LocationRecord's proto3 JSON and parses back to the same position", () => {
    const random = seededRandom(11);
    for (let i = 0; i < CASES; i++) {
      const record = randomMessage(LocationRecordSchema, random);
      // The stored position is always a live one.
      record.backfill = false;
      const position = fromRecord(record);
      const stored = encodeStoredPosition(position);
      expect(fromJsonString(LocationRecordSchema, stored)).toEqual(record);
      expect(parseStoredPosition(stored)).toEqual(position);
    }
  });

  test("the location log's record is LocationRecord's bytes, backfill or not", () => {
    const random = seededRandom(12);
    for (let i = 0; i < CASES; i++) {
      const record = randomMessage(LocationRecordSchema, random);
      record.backfill = i % 2 === 0;
      const bytes = encodeLocationRecord(fromRecord(record), record.backfill);
      expect(fromBinary(LocationRecordSchema, bytes)).toEqual(record);
    }
  });

  test("the frame on track:{p<n>}:<o> is a TrackingEvent's proto3 JSON with the position", () => {
    const random = seededRandom(13);
    for (let i = 0; i < CASES; i++) {
      const value = randomMessage(PositionEventSchema, random);
      const expected = create(TrackingEventSchema, {
        orderId: `o-${i}`,
        event: { case: "position", value },
      });
      const json = positionEventJson(`o-${i}`, fromPositionEvent(value));
      expect(fromJsonString(TrackingEventSchema, json)).toEqual(expected);
    }
  });

  test("a stored position this code did not write (the form before it, damage) reads as absent", () => {
    for (const raw of [
      null,
      "",
      "{",
      JSON.stringify({ lat: 51.5, lng: -0.1, seq: "3", recordedAt: 1, receivedAt: 1, city: "x" }),
      encodeStoredPosition({
        ...fromRecord(randomMessage(LocationRecordSchema, seededRandom(1))),
      }).replace(/"seq":"\d+"/, '"seq":"-1"'),
    ])
      expect(parseStoredPosition(raw)).toBeUndefined();
  });
});
