import type { DecodedRecord } from "./record-batch";

/** One record as the fixture received it through Produce. */
export interface ProducedRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  /** CreateTime in ms, as the producer stamped it. */
  timestamp: bigint;
  /** Offset within its partition, from 0. */
  offset: bigint;
  /** When the broker stored it (ms since epoch, its own clock). */
  storedAtMs: number;
}

/**
 * The broker's storage: which topics exist, the next offset of each
 * partition, and every appended record in arrival order. It outlives the
 * listener, so records and offsets survive stop() and restart().
 */
export class TopicLog {
  readonly records: ProducedRecord[] = [];
  readonly #topics = new Set<string>();
  readonly #nextOffsets = new Map<string, bigint>();
  readonly #onAppend = new Set<() => void>();

  constructor(
    readonly partitions: number,
    topics: readonly string[] = [],
  ) {
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new Error(`partitions must be a positive integer, got ${partitions}`);
    }
    for (const topic of topics) this.#topics.add(topic);
  }

  hasTopic(topic: string): boolean {
    return this.#topics.has(topic);
  }

  createTopic(topic: string): void {
    this.#topics.add(topic);
  }

  topicNames(): string[] {
    return [...this.#topics];
  }

  hasPartition(topic: string, partition: number): boolean {
    return (
      this.hasTopic(topic) &&
      Number.isInteger(partition) &&
      partition >= 0 &&
      partition < this.partitions
    );
  }

  /** Appends a batch to one partition; returns the offset of its first record. */
  append(topic: string, partition: number, batch: readonly DecodedRecord[]): bigint {
    const slot = `${topic}\u0000${partition}`;
    const base = this.#nextOffsets.get(slot) ?? 0n;
    const storedAtMs = Date.now();
    batch.forEach((record, i) => {
      this.records.push({ topic, partition, ...record, offset: base + BigInt(i), storedAtMs });
    });
    this.#nextOffsets.set(slot, base + BigInt(batch.length));
    if (batch.length > 0) for (const listener of this.#onAppend) listener();
    return base;
  }

  /** Resolves with a snapshot once at least `count` records exist; rejects at the deadline. */
  waitForRecords(count: number, timeoutMs: number): Promise<ProducedRecord[]> {
    if (this.records.length >= count) return Promise.resolve([...this.records]);
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.records.length < count) return;
        clearTimeout(timer);
        this.#onAppend.delete(check);
        resolve([...this.records]);
      };
      const timer = setTimeout(() => {
        this.#onAppend.delete(check);
        reject(
          new Error(
            `kafka fixture: expected at least ${count} records within ${timeoutMs} ms, got ${this.records.length}`,
          ),
        );
      }, timeoutMs);
      this.#onAppend.add(check);
    });
  }
}
