/** Big-endian readers and writers for the Kafka protocol's primitive types. */
export class KafkaReader {
  offset = 0;
  constructor(readonly buffer: Buffer) {}

  int8(): number {
    const value = this.buffer.readInt8(this.offset);
    this.offset += 1;
    return value;
  }
  int16(): number {
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  int32(): number {
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  int64(): bigint {
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
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
    return Array.from({ length: count }, () => item(this));
  }
  /** Zigzag varint (records use these for lengths and deltas). */
  varint(): number {
    let raw = 0;
    let shift = 0;
    for (;;) {
      const byte = this.buffer[this.offset++];
      if (byte === undefined) throw new Error("varint runs past the buffer");
      raw |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7;
      if (shift > 28) throw new Error("varint too long");
    }
    return (raw >>> 1) ^ -(raw & 1);
  }
  varlong(): bigint {
    let raw = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.buffer[this.offset++];
      if (byte === undefined) throw new Error("varlong runs past the buffer");
      raw |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw new Error("varlong too long");
    }
    return (raw >> 1n) ^ -(raw & 1n);
  }
  /** Varint-length bytes; null for length -1. */
  varBytes(): Buffer | null {
    const length = this.varint();
    return length < 0 ? null : this.take(length);
  }
  take(length: number): Buffer {
    if (this.offset + length > this.buffer.length) throw new Error("field runs past the buffer");
    const slice = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }
  remaining(): number {
    return this.buffer.length - this.offset;
  }
}

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
