import { describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { GeoPingSchema } from "../proto/gen/delivery/tracking/v1/geo_pb";
import {
  DropReason,
  PingAckSchema,
  StreamPingsResponseSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { LocationRecordSchema } from "../proto/gen/delivery/tracking/v1/location_record_pb";
import { encodeAckResponse, encodeLocationRecord } from "./hot-path-encoders";

// A fixed-seed generator: the same cases every run, covering zeros, negatives and big values.
let state = 7;
function random(): number {
  state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
  return state / 2 ** 31;
}
const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;

function randomPing() {
  return create(GeoPingSchema, {
    lat: pick([0, -0, 51.5074, -33.8688, 85.05112878]),
    lng: pick([0, -0.1278, 151.2093, -180]),
    accuracyM: pick([0, 4.5, 150]),
    speedMps: pick([0, 8.25, -1]),
    headingDeg: pick([0, 359.9, 90]),
    recordedAtMs: pick([0n, 1_795_000_000_000n, -5n]),
    seq: pick([0n, 1n, 2n ** 63n + 5n, 17_953_575_363_751n]),
  });
}

describe("hot-path encoders write exactly what toBinary writes", () => {
  test("StreamPingsResponse { ack }", () => {
    for (let i = 0; i < 500; i++) {
      const ack = create(PingAckSchema, {
        lastAcceptedSeq: pick([0n, 42n, 2n ** 64n - 1n]),
        nextIntervalMs: pick([0, 1_000, 30_000]),
        dropped: Array.from({ length: pick([0, 1, 3]) }, () => ({
          seq: pick([0n, 9n, 2n ** 40n]),
          reason: pick([DropReason.UNSPECIFIED, DropReason.TELEPORT, DropReason.OVERLOADED]),
        })),
      });
      const expected = toBinary(
        StreamPingsResponseSchema,
        create(StreamPingsResponseSchema, { event: { case: "ack", value: ack } }),
      );
      expect(encodeAckResponse(ack)).toEqual(expected);
    }
  });

  test("LocationRecord", () => {
    for (let i = 0; i < 500; i++) {
      const record = {
        riderId: pick(["", "r1", "rider-ü-42"]),
        city: pick(["", "london"]),
        ping: randomPing(),
        receivedAtMs: pick([0, 1_795_000_000_123]),
        backfill: pick([false, true]),
      };
      const expected = toBinary(
        LocationRecordSchema,
        create(LocationRecordSchema, { ...record, receivedAtMs: BigInt(record.receivedAtMs) }),
      );
      expect(encodeLocationRecord(record)).toEqual(expected);
    }
  });
});
