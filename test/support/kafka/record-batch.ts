import { gunzipSync } from "node:zlib";
import { KafkaReader } from "./wire";

export interface DecodedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  timestamp: bigint;
  offsetDelta: number;
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), which RecordBatch v2 uses over attributes..end. */
export function crc32c(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * Decodes a Produce record set: one or more RecordBatch v2 (magic 2), each
 * checked against its CRC, records decompressed when gzip'd. Throws on any
 * byte that does not follow the format, so a broken producer fails the test.
 */
export function decodeRecordSet(recordSet: Buffer): DecodedRecord[] {
  const records: DecodedRecord[] = [];
  const reader = new KafkaReader(recordSet);
  while (reader.remaining() > 0) {
    reader.int64(); // baseOffset: assigned by the broker, the producer sends 0
    const batchLength = reader.int32();
    const batch = new KafkaReader(reader.take(batchLength));
    batch.int32(); // partitionLeaderEpoch
    const magic = batch.int8();
    if (magic !== 2) throw new Error(`unsupported record batch magic ${magic}`);
    const crc = batch.uint32();
    const checked = batch.buffer.subarray(batch.offset);
    if (crc32c(checked) !== crc) throw new Error("record batch CRC mismatch");
    const attributes = batch.int16();
    batch.int32(); // lastOffsetDelta
    const firstTimestamp = batch.int64();
    batch.int64(); // maxTimestamp
    batch.int64(); // producerId
    batch.int16(); // producerEpoch
    batch.int32(); // baseSequence
    const count = batch.int32();
    const codec = attributes & 0x07;
    let body = batch.buffer.subarray(batch.offset);
    if (codec === 1) body = gunzipSync(body);
    else if (codec !== 0)
      throw new Error(`compression codec ${codec} not supported by the fixture`);
    const recordReader = new KafkaReader(body);
    for (let i = 0; i < count; i++) records.push(decodeRecord(recordReader, firstTimestamp));
  }
  return records;
}

function decodeRecord(reader: KafkaReader, firstTimestamp: bigint): DecodedRecord {
  const length = reader.varint();
  const record = new KafkaReader(reader.take(length));
  record.int8(); // attributes (unused in v2 records)
  const timestampDelta = record.varlong();
  const offsetDelta = record.varint();
  const key = record.varBytes();
  const value = record.varBytes();
  const headerCount = record.varint();
  const headers: Record<string, Buffer> = {};
  for (let h = 0; h < headerCount; h++) {
    const name = record.varBytes()?.toString("utf8") ?? "";
    headers[name] = record.varBytes() ?? Buffer.alloc(0);
  }
  if (record.remaining() !== 0) throw new Error("record has trailing bytes");
  return { key, value, headers, timestamp: firstTimestamp + timestampDelta, offsetDelta };
}
