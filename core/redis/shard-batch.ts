import calculateSlot from "cluster-key-slot";
import type { ChainableCommander, Cluster } from "ioredis";
import type { RedisConnection } from "./client";

/**
 * Collects commands for one flush into one pipeline per Redis shard (one in
 * standalone mode). ioredis refuses a cluster pipeline whose keys span
 * masters, so commands are grouped by the master serving each key's slot.
 */
export class ShardBatch {
  readonly #connection: RedisConnection;
  readonly #pipelines = new Map<string, ChainableCommander>();

  constructor(connection: RedisConnection) {
    this.#connection = connection;
  }

  /** The pipeline for the shard that owns `key`; returns its group id too. */
  pipelineFor(key: string): { group: string; pipeline: ChainableCommander } {
    const group = this.#groupOf(key);
    let pipeline = this.#pipelines.get(group);
    if (!pipeline) {
      pipeline = this.#connection.client.pipeline();
      this.#pipelines.set(group, pipeline);
    }
    return { group, pipeline };
  }

  /**
   * Runs every pipeline at once; resolves to the groups that failed (wholly
   * or partly). A shard that has not answered within `timeoutMs` counts as
   * failed, so one hung connection cannot stall the caller's flushes.
   */
  async exec(timeoutMs: number): Promise<Set<string>> {
    const failed = new Set<string>();
    const pending = new Set(this.#pipelines.keys());
    const all = Promise.all(
      [...this.#pipelines].map(async ([group, pipeline]) => {
        try {
          const results = (await pipeline.exec()) ?? [];
          if (results.some(([error]) => error)) failed.add(group);
        } catch {
          failed.add(group);
        }
        pending.delete(group);
      }),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([all, deadline]);
    clearTimeout(timer);
    for (const group of pending) failed.add(group);
    return failed;
  }

  #groupOf(key: string): string {
    if (this.#connection.mode === "standalone") return "all";
    const slots = (this.#connection.client as Cluster).slots;
    return slots[calculateSlot(key)]?.join(";") ?? "unmapped";
  }
}
