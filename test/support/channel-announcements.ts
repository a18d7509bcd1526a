import type { RedisConnection } from "../../core/redis/client";

/**
 * A channel subscriber's `onResubscribed` that does what its users do (tracking re-reads
 * its orders, the ingest catches up): read each announced channel's state at once through
 * the command connection. Keeps each announcement, and each read's outcome ("read <n>" or
 * the error's message).
 */
export function readingAnnouncements(connection: RedisConnection) {
  const announced: string[][] = [];
  const reads: Promise<string>[] = [];
  const onResubscribed = (list: readonly string[]) => {
    announced.push([...list]);
    for (const channel of list)
      reads.push(
        connection.client.exists(channel).then(
          (found) => `read ${found}`,
          (error: Error) => error.message,
        ),
      );
  };
  return { announced, reads, onResubscribed };
}
