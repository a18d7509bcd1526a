import { expect } from "bun:test";
import type { Redis } from "ioredis";
import pino from "pino";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { loadIngestConfig } from "../../location-ingest/config";
import { createRiderInbox } from "../../location-ingest/session/rider-inbox";
import {
  createRiderSessions,
  type LiveStreamEvents,
  type RiderSessions,
  type StreamEnd,
} from "../../location-ingest/session/rider-sessions";
import type { CatchUpReason } from "../../location-ingest/session/stream-catch-up";
import { sessionEnvironment } from "./session-environment";
import { waitUntil } from "./wait";

const config = loadIngestConfig({ REDIS_URL: "redis://127.0.0.1:1", JWT_SECRET: "x".repeat(32) });

/** One node's rider sessions on `connection` (its inbox included), with the given clock. */
export function testRiderSessions(
  connection: RedisConnection,
  options: {
    now?: () => number;
    inboxLingerMs?: number;
    maxIdle?: number;
    logger?: pino.Logger;
  } = {},
): RiderSessions {
  const { now = Date.now, maxIdle = 100, inboxLingerMs } = options;
  const logger = options.logger ?? pino({ level: "silent" });
  const { env } = sessionEnvironment(connection, config, now);
  const inbox = createRiderInbox(connection, logger);
  return createRiderSessions({ env, inbox, maxIdle, inboxLingerMs, logger });
}

/** A live stream's catch-up, as its debug line tells it. */
export interface CatchUpEntry {
  readonly riderId: string;
  readonly reason: CatchUpReason;
  readonly offerSent: boolean;
  /** Catch-ups running when it finished, itself included. */
  readonly catchUpsRunning: number;
}

/**
 * Rider sessions whose finished catch-ups are recorded, in order: after an
 * inbox gap (`caughtUp`), and as a stream opened (`opened`; one queued
 * while its stream's first gap waited is that gap's).
 */
export function sessionsWithCatchUps(
  connection: RedisConnection,
  options: { now?: () => number } = {},
): { sessions: RiderSessions; caughtUp: CatchUpEntry[]; opened: CatchUpEntry[] } {
  const caughtUp: CatchUpEntry[] = [];
  const opened: CatchUpEntry[] = [];
  const logger = pino(
    { level: "debug" },
    {
      write(line: string) {
        const entry = JSON.parse(line) as CatchUpEntry & { msg?: string };
        if (entry.msg !== "live stream caught up") return;
        (entry.reason === "gap" ? caughtUp : opened).push(entry);
      },
    },
  );
  return { sessions: testRiderSessions(connection, { ...options, logger }), caughtUp, opened };
}

/** How many connections listen to the rider's inbox. */
export const inboxListeners = async (db: Redis, riderId: string): Promise<number> =>
  Number(((await db.pubsub("NUMSUB", keys.riderInbox(riderId))) as unknown[])[1]);

/**
 * A StreamPings held open on `sessions`, recording what it is sent, once
 * its inbox is subscribed and `rider:{r}:stream` reads `generation` (its
 * draw done; pass what the key reads after a failed draw to open one that
 * holds none).
 */
export async function openLiveStream(
  sessions: RiderSessions,
  db: Redis,
  riderId: string,
  generation = "1",
) {
  /** Each offer sent, with the time it had left as it was sent. */
  const offers: (Parameters<LiveStreamEvents["offer"]>[0] & { expiresInMs: number })[] = [];
  const ends: StreamEnd[] = [];
  const lease = sessions.openLiveStream(
    { riderId, city: "london", exp: Date.now() / 1000 + 60 },
    {
      offer: (offer, expiresInMs) => offers.push({ ...offer, expiresInMs }),
      end: (reason) => ends.push(reason),
    },
  );
  await waitUntil(async () => (await inboxListeners(db, riderId)) >= 1, 5_000, "inbox subscribed");
  await waitUntil(
    async () => (await db.get(keys.riderStream(riderId))) === generation,
    5_000,
    "generation drawn",
  );
  return { lease, offers, ends };
}

/**
 * Drops every subscriber connection and, in the same round trip, runs what
 * else is given: nothing published meanwhile reaches them.
 */
export async function inGap(db: Redis, ...commands: [string, ...(string | number)[]][]) {
  const pipeline = db.pipeline().call("CLIENT", "KILL", "TYPE", "pubsub");
  for (const [command, ...args] of commands) pipeline.call(command, ...args);
  const replies = await pipeline.exec();
  expect(Number(replies?.[0]?.[1])).toBeGreaterThanOrEqual(1);
  return replies;
}
