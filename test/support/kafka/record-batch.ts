import { gunzipSync } from "node:zlib";
import { KafkaReader } from "./wire";

/** One record out of a RecordBatch, before the broker gives it an offset. */
export interface DecodedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  timestamp: bigint;
}

const MAGIC_V2 = 2;
const CODEC_MASK = 0x07;
const CODEC_NONE = 0;
const CODEC_GZIP = 1;
// Control batches carry transaction markers, not user records.
const CONTROL_FLAG = 0x20;

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), which RecordBatch v2 computes from attributes to the end. */
export function crc32c(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * Decodes a Produce record set: one or more RecordBatch v2 (magic 2), each
 * checked against its CRC, gzip'd record data inflated. Throws on any byte
 * that does not follow the format, so a producer bug fails the test loudly.
 */
export function decodeRecordSet(recordSet: Buffer): DecodedRecord[] {
  const records: DecodedRecord[] = [];
  const reader = new KafkaReader(recordSet);
  while (reader.remaining() > 0) records.push(...decodeBatch(reader));
  return records;
}

function decodeBatch(reader: KafkaReader): DecodedRecord[] {
  reader.int64(); // baseOffset: the broker assigns offsets, producers send 0
  const batch = new KafkaReader(reader.take(reader.int32()));
  batch.int32(); // partitionLeaderEpoch
  const magic = batch.int8();
  if (magic !== MAGIC_V2) throw new Error(`record batch magic ${magic}, the fixture reads only 2`);
  const crc = batch.uint32();
  if (crc32c(batch.buffer.subarray(batch.offset)) !== crc)
    throw new Error("record batch CRC mismatch");
  const attributes = batch.int16();
  batch.int32(); // lastOffsetDelta
  const firstTimestamp = batch.int64();
  batch.int64(); // maxTimestamp
  batch.int64(); // producerId
  batch.int16(); // producerEpoch
  batch.int32(); // baseSequence
  const count = batch.int32();
  if (attributes & CONTROL_FLAG) return [];
  const records = new KafkaReader(inflate(attributes & CODEC_MASK, batch.rest()));
  const decoded = Array.from({ length: count }, (_, i) => decodeRecord(records, firstTimestamp, i));
  if (records.remaining() !== 0) throw new Error("record batch has bytes after its last record");
  return decoded;
}

function inflate(codec: number, data: Buffer): Buffer {
  if (codec === CODEC_NONE) return data;
  if (codec === CODEC_GZIP) return gunzipSync(data);
  throw new Error(`compression codec ${codec} is not supported by the fixture (none, gzip only)`);
}

function decodeRecord(reader: KafkaReader, firstTimestamp: bigint, index: number): DecodedRecord {
  const record = new KafkaReader(reader.take(reader.varint()));
  record.int8(); // attributes: unused by v2 records
  const timestampDelta = record.varlong();
  // The broker assigns offsets in batch order, so like Kafka's validator it
  // refuses a producer whose deltas do not count 0, 1, 2, ...
  const offsetDelta = record.varint();
  if (offsetDelta !== index) throw new Error(`record ${index} has offset delta ${offsetDelta}`);
  const key = record.varBytes();
  const value = record.varBytes();
  const headerCount = record.varint();
  const headers: Record<string, Buffer> = {};
  for (let h = 0; h < headerCount; h++) {
    const name = record.varBytes()?.toString("utf8") ?? "";
    // A repeated header name (kafkajs sends one per array element) keeps its last value.
    headers[name] = record.varBytes() ?? Buffer.alloc(0);
  }
  if (record.remaining() !== 0) throw new Error("record has bytes after its headers");
  return { key, value, headers, timestamp: firstTimestamp + timestampDelta };
}
