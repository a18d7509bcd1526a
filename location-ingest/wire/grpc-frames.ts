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

export interface GrpcFrame {
  readonly compressed: boolean;
  readonly message: Uint8Array;
}

/** A length prefix: the flags byte and the 4-byte length. */
const PREFIX_BYTES = 5;

/**
 * Splits a byte stream into framed messages, however TCP chunks them. A
 * frame over `maxBytes` is reported from its length prefix, before its body
 * is buffered. The bytes of an unfinished frame are kept as the chunks they
 * came in and joined once, when the prefix or the frame is complete: joining
 * on every chunk would copy a frame sent a byte at a time once per byte (a
 * 64 KiB message, 2 GiB copied; a trickling peer makes that a denial of
 * service, and a loaded machine spent seconds on it).
 *
 * A chunk of whole frames (the common case) is read where it lies and the
 * reader keeps nothing new: a reader lives as long as its stream, and an
 * object it held at a young collection (say a fresh chunk list per chunk)
 * is promoted with it and, dead soon after, waits for a full collection.
 * At 2,000 streams that grew the heap by ~10 MB and doubled what each young
 * collection marked (bench/RESULTS.md, the frame reader and the collector).
 */
export class GrpcFrameReader {
  /** The unfinished frame's chunks: one list for the reader's life, emptied when they are joined. */
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes the unfinished frame needs before anything can be read from it: its prefix, then all of it. */
  #needed = PREFIX_BYTES;
  readonly #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Adds a chunk; returns the frames it completed, or "too_large". */
  push(chunk: Buffer): GrpcFrame[] | "too_large" {
    if (chunk.length === 0) return [];
    this.#buffered += chunk.length;
    if (this.#buffered < this.#needed) {
      this.#chunks.push(chunk);
      return [];
    }
    let bytes = chunk;
    if (this.#chunks.length > 0) {
      this.#chunks.push(chunk);
      bytes = Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks.length = 0;
    }
    const frames: GrpcFrame[] = [];
    let offset = 0;
    this.#needed = PREFIX_BYTES;
    while (bytes.length - offset >= PREFIX_BYTES) {
      const flags = bytes[offset] as number;
      const length = bytes.readUInt32BE(offset + 1);
      if (length > this.#maxBytes) return "too_large";
      if (bytes.length - offset - PREFIX_BYTES < length) {
        this.#needed = PREFIX_BYTES + length;
        break;
      }
      const message = bytes.subarray(offset + PREFIX_BYTES, offset + PREFIX_BYTES + length);
      frames.push({ compressed: (flags & 1) === 1, message });
      offset += PREFIX_BYTES + length;
    }
    // A chunk of whole frames leaves nothing: no view of its tail to make.
    if (offset < bytes.length) this.#chunks.push(bytes.subarray(offset));
    this.#buffered = bytes.length - offset;
    return frames;
  }

  /** True when bytes of an unfinished frame are left over. */
  hasPartialFrame(): boolean {
    return this.#buffered > 0;
  }
}
