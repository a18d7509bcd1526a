import { describe, expect, test } from "bun:test";
import { encodeGrpcFrame, GrpcFrameReader } from "./grpc-frames";

const message = (length: number, fill: number) => new Uint8Array(length).fill(fill);

describe("gRPC length-prefixed framing", () => {
  test("a frame is a flag byte, a big-endian length and the message", () => {
    expect([...encodeGrpcFrame(Uint8Array.of(7, 8, 9))]).toEqual([0, 0, 0, 0, 3, 7, 8, 9]);
    expect([...encodeGrpcFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0, 0]);
  });

  test("frames come out whole however TCP cuts the bytes, one byte at a time included", () => {
    const messages = [message(3, 1), message(0, 0), message(300, 2), message(70_000, 3)];
    const bytes = Buffer.concat(messages.map((m) => encodeGrpcFrame(m)));
    for (const cut of [1, 2, 5, 7, 4096, bytes.length]) {
      const reader = new GrpcFrameReader(100_000);
      const out: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; at += cut) {
        const frames = reader.push(bytes.subarray(at, at + cut));
        if (frames === "too_large") throw new Error("unexpected");
        for (const frame of frames) {
          expect(frame.compressed).toBe(false);
          out.push(Uint8Array.from(frame.message));
        }
      }
      expect(reader.hasPartialFrame()).toBe(false);
      expect(out).toEqual(messages);
    }
  });

  test("an unfinished frame is reported as pending", () => {
    const reader = new GrpcFrameReader(100);
    const bytes = encodeGrpcFrame(message(10, 4));
    expect(reader.push(bytes.subarray(0, 3))).toEqual([]);
    expect(reader.hasPartialFrame()).toBe(true);
    expect(reader.push(bytes.subarray(3, 12))).toEqual([]);
    const frames = reader.push(bytes.subarray(12));
    expect(frames).toHaveLength(1);
    expect(reader.hasPartialFrame()).toBe(false);
  });

  test("a length prefix over the limit is refused before its body arrives", () => {
    const reader = new GrpcFrameReader(1024);
    const header = Buffer.from([0, 0, 0, 0x04, 0x01]); // 1025 bytes announced, none sent
    expect(reader.push(header)).toBe("too_large");
    // Exactly the limit is fine.
    const fits = new GrpcFrameReader(1024);
    expect(fits.push(encodeGrpcFrame(message(1024, 5)))).toHaveLength(1);
  });

  test("the compressed flag is read from the first byte", () => {
    const reader = new GrpcFrameReader(100);
    const frame = encodeGrpcFrame(message(2, 6));
    frame[0] = 1;
    const [read] = reader.push(frame) as { compressed: boolean }[];
    expect(read?.compressed).toBe(true);
  });
});
