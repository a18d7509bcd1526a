import calculateSlot from "cluster-key-slot";
import type { ChainableCommander, Cluster } from "ioredis";
import { settleWithin } from "../lifecycle/settle-within";
import type { RedisConnection } from "./client";

/** Where a queued command sits: its shard group and its place in that group's pipeline. */
export interface QueuedCommand {
  readonly group: string;
  readonly index: number;
}

/** What a batch's pipelines answered. */
export interface ShardReplies {
  /** Groups whose pipeline failed (wholly or partly) or did not answer in time. */
  readonly failed: ReadonlySet<string>;
  /** A command's reply; undefined when its group failed. */
  reply(command: QueuedCommand): unknown;
}

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

  /**
   * Queues commands on the pipeline of the shard that owns `key`; returns
   * where the first of them sits.
   */
  queue(key: string, commands: (pipeline: ChainableCommander) => void): QueuedCommand {
    const group = this.#groupOf(key);
    let pipeline = this.#pipelines.get(group);
    if (!pipeline) {
      pipeline = this.#connection.client.pipeline();
      this.#pipelines.set(group, pipeline);
    }
    const index = pipeline.length;
    commands(pipeline);
    return { group, index };
  }

  /**
   * Which keys one multi-key command of this batch may take together: keys
   * with the same answer share a slot (any two do on a standalone server).
   */
  slotOf(key: string): string {
    return this.#connection.mode === "standalone" ? "all" : String(calculateSlot(key));
  }

  /**
   * Runs every pipeline at once. A shard that has not answered within
   * `timeoutMs` counts as failed, so one hung connection cannot stall the
   * caller's flushes; the other shards' replies stand.
   */
  async exec(timeoutMs: number): Promise<ShardReplies> {
    const failed = new Set<string>();
    const replies = new Map<string, unknown[]>();
    const pending = new Set(this.#pipelines.keys());
    const all = Promise.all(
      [...this.#pipelines].map(async ([group, pipeline]) => {
        try {
          const results = (await pipeline.exec()) ?? [];
          if (results.some(([error]) => error)) failed.add(group);
          else
            replies.set(
              group,
              results.map(([, reply]) => reply),
            );
        } catch {
          failed.add(group);
        }
        pending.delete(group);
      }),
    );
    await settleWithin(all, timeoutMs, undefined);
    for (const group of pending) {
      failed.add(group);
      replies.delete(group);
    }
    return {
      failed,
      reply: (command) =>
        failed.has(command.group) ? undefined : replies.get(command.group)?.[command.index],
    };
  }

  #groupOf(key: string): string {
    if (this.#connection.mode === "standalone") return "all";
    const slots = (this.#connection.client as Cluster).slots;
    return slots[calculateSlot(key)]?.join(";") ?? "unmapped";
  }
}
