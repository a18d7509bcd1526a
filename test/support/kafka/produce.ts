import { ErrorCode } from "./protocol";
import { type DecodedRecord, decodeRecordSet } from "./record-batch";
import type { TopicLog } from "./topic-log";
import { type KafkaReader, KafkaWriter } from "./wire";

export interface ProduceOptions {
  /** Asked once per Produce request; true fails every partition in it. */
  failProduce?: () => boolean;
  /** Told about each record set the fixture could not decode. */
  onCorrupt: (error: Error) => void;
}

interface PartitionResult {
  partition: number;
  errorCode: number;
  baseOffset: bigint;
}

/**
 * Produce v3-v7 (all share one request layout carrying RecordBatch v2).
 * Returns null for acks=0, where Kafka sends no response at all.
 */
export function handleProduce(
  request: KafkaReader,
  version: number,
  log: TopicLog,
  options: ProduceOptions,
): KafkaWriter | null {
  request.nullableString(); // transactional_id
  const acks = request.int16();
  request.int32(); // timeout_ms: the fixture answers at once
  const topics =
    request.array((r) => ({
      topic: r.string(),
      partitions: r.array((p) => ({ partition: p.int32(), recordSet: p.bytes() })) ?? [],
    })) ?? [];

  const failed = options.failProduce?.() ?? false;
  const results = topics.map(({ topic, partitions }) => ({
    topic,
    partitions: partitions.map(({ partition, recordSet }): PartitionResult => {
      // NOT_ENOUGH_REPLICAS is what an acks=-1 write gets when the ISR shrank:
      // retriable, so the producer's own retry policy is what gets tested.
      if (failed) return rejected(partition, ErrorCode.notEnoughReplicas);
      if (!log.hasPartition(topic, partition)) {
        return rejected(partition, ErrorCode.unknownTopicOrPartition);
      }
      const batch = decode(recordSet, options.onCorrupt);
      if (!batch) return rejected(partition, ErrorCode.corruptMessage);
      return {
        partition,
        errorCode: ErrorCode.none,
        baseOffset: log.append(topic, partition, batch),
      };
    }),
  }));
  if (acks === 0) return null;

  return new KafkaWriter()
    .array(results, (w, { topic, partitions }) =>
      w.string(topic).array(partitions, (pw, result) => {
        pw.int32(result.partition).int16(result.errorCode).int64(result.baseOffset);
        pw.int64(-1n); // log_append_time: -1 because topics use CreateTime
        if (version >= 5) pw.int64(result.errorCode === ErrorCode.none ? 0n : -1n); // log_start_offset
      }),
    )
    .int32(0); // throttle_time_ms
}

function rejected(partition: number, errorCode: number): PartitionResult {
  return { partition, errorCode, baseOffset: -1n };
}

function decode(
  recordSet: Buffer | null,
  onCorrupt: (error: Error) => void,
): DecodedRecord[] | null {
  try {
    return recordSet ? decodeRecordSet(recordSet) : [];
  } catch (error) {
    onCorrupt(error instanceof Error ? error : new Error(String(error)));
    return null;
  }
}
