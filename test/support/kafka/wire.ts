/**
 * Big-endian readers and writers for the Kafka protocol's primitive types.
 * Reads past the end throw, so a malformed request never yields garbage.
 */
export class KafkaReader {
  offset = 0;
  constructor(readonly buffer: Buffer) {}

  int8(): number {
    return this.#fixed(1, (at) => this.buffer.readInt8(at));
  }
  int16(): number {
    return this.#fixed(2, (at) => this.buffer.readInt16BE(at));
  }
  int32(): number {
    return this.#fixed(4, (at) => this.buffer.readInt32BE(at));
  }
  uint32(): number {
    return this.#fixed(4, (at) => this.buffer.readUInt32BE(at));
  }
  int64(): bigint {
    return this.#fixed(8, (at) => this.buffer.readBigInt64BE(at));
  }
  boolean(): boolean {
    return this.int8() !== 0;
  }
  /** int16-length string; null for length -1. */
  nullableString(): string | null {
    const length = this.int16();
    if (length < 0) return null;
    return this.take(length).toString("utf8");
  }
  string(): string {
    const value = this.nullableString();
    if (value === null) throw new Error("unexpected null string");
    return value;
  }
  /** int32-length bytes; null for length -1. */
  bytes(): Buffer | null {
    const length = this.int32();
    return length < 0 ? null : this.take(length);
  }
  /** int32-count array; null for count -1. */
  array<T>(item: (reader: KafkaReader) => T): T[] | null {
    const count = this.int32();
    if (count < 0) return null;
    // Each item takes at least a byte: a huge count from a broken frame fails here, not in OOM.
    if (count > this.remaining()) throw new Error(`array count ${count} exceeds the frame`);
    return Array.from({ length: count }, () => item(this));
  }
  /** Zigzag varint (record lengths, deltas and counts in RecordBatch v2). */
  varint(): number {
    let raw = 0;
    for (let shift = 0; shift <= 28; shift += 7) {
      const byte = this.int8() & 0xff;
      raw |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return (raw >>> 1) ^ -(raw & 1);
    }
    throw new Error("varint longer than 5 bytes");
  }
  /** Zigzag varlong (timestamp deltas). */
  varlong(): bigint {
    let raw = 0n;
    for (let shift = 0n; shift <= 63n; shift += 7n) {
      const byte = this.int8() & 0xff;
      raw |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return (raw >> 1n) ^ -(raw & 1n);
    }
    throw new Error("varlong longer than 10 bytes");
  }
  /** Varint-length bytes; null for length -1. */
  varBytes(): Buffer | null {
    const length = this.varint();
    return length < 0 ? null : this.take(length);
  }
  take(length: number): Buffer {
    if (length > this.remaining()) throw new Error("field runs past the end of the frame");
    const slice = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }
  rest(): Buffer {
    return this.take(this.remaining());
  }
  remaining(): number {
    return this.buffer.length - this.offset;
  }

  #fixed<T>(size: number, read: (at: number) => T): T {
    if (size > this.remaining()) throw new Error("field runs past the end of the frame");
    const value = read(this.offset);
    this.offset += size;
    return value;
  }
}

/** Builds a response body; `build()` concatenates once at the end. */
export class KafkaWriter {
  readonly #parts: Buffer[] = [];

  int8(value: number): this {
    const b = Buffer.alloc(1);
    b.writeInt8(value);
    return this.raw(b);
  }
  int16(value: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(value);
    return this.raw(b);
  }
  int32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(value);
    return this.raw(b);
  }
  int64(value: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(value);
    return this.raw(b);
  }
  boolean(value: boolean): this {
    return this.int8(value ? 1 : 0);
  }
  /** int16-length string; null writes length -1. */
  string(value: string | null): this {
    if (value === null) return this.int16(-1);
    const bytes = Buffer.from(value, "utf8");
    return this.int16(bytes.length).raw(bytes);
  }
  array<T>(items: readonly T[], write: (writer: this, item: T) => void): this {
    this.int32(items.length);
    for (const item of items) write(this, item);
    return this;
  }
  raw(bytes: Buffer): this {
    this.#parts.push(bytes);
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
