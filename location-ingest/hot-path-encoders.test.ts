import { describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  DropReason,
  PingAckSchema,
  StreamPingsResponseSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { encodeAckResponse } from "./hot-path-encoders";

// A fixed-seed generator: the same cases every run, covering zeros, negatives and big values.
let state = 7;
function random(): number {
  state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
  return state / 2 ** 31;
}
const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;

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
});
