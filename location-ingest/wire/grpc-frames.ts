/**
 * gRPC's length-prefixed message framing (also gRPC-Web's and the Connect
 * streaming protocol's): a 1-byte flags field (bit 0 = compressed), a
 * 4-byte big-endian length, then the message.
 */
export function encodeGrpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const EMPTY = Buffer.alloc(0);

export interface GrpcFrame {
  readonly compressed: boolean;
  readonly message: Uint8Array;
}

/**
 * Splits a byte stream into framed messages, however TCP chunks them. A
 * frame over `maxBytes` is reported from its length prefix, before its body
 * is buffered.
 */
export class GrpcFrameReader {
  #pending: Buffer = EMPTY;
  readonly #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Adds a chunk; returns the frames it completed, or "too_large". */
  push(chunk: Buffer): GrpcFrame[] | "too_large" {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: GrpcFrame[] = [];
    let offset = 0;
    while (this.#pending.length - offset >= 5) {
      const flags = this.#pending[offset] as number;
      const length = this.#pending.readUInt32BE(offset + 1);
      if (length > this.#maxBytes) return "too_large";
      if (this.#pending.length - offset - 5 < length) break;
      const message = this.#pending.subarray(offset + 5, offset + 5 + length);
      frames.push({ compressed: (flags & 1) === 1, message });
      offset += 5 + length;
    }
    // A chunk of whole frames (the common case) leaves nothing: no view of its tail to make.
    this.#pending = offset === this.#pending.length ? EMPTY : this.#pending.subarray(offset);
    return frames;
  }

  /** True when bytes of an unfinished frame are left over. */
  hasPartialFrame(): boolean {
    return this.#pending.length > 0;
  }
}
