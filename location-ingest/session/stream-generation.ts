import type { Logger } from "pino";
import { settleWithin } from "../../core/lifecycle/settle-within";
import { encodeRiderInboxMessage } from "../../core/messages/rider-inbox";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import type { LiveStream } from "./live-stream";
import type { RiderInbox } from "./rider-inbox";

/** How long the stream generation keys outlive the rider's last draw. */
const STREAM_GENERATION_TTL_S = 86_400;

/** What draw-stream-generation.lua said of a stream. */
export interface GenerationDraw {
  readonly status: "drawn" | "kept" | "superseded";
  /** The stream's generation ("drawn", "kept"), or the newer stream's ("superseded"). */
  readonly generation: number;
}

/**
 * Draws the next generation of the rider's StreamPings for stream `id`,
 * opened `ageMs` ago; with `held` (the generation it holds, 0 when its draw
 * failed), rechecks it after an inbox gap instead: "kept" while it is the
 * holder of the newest, "superseded" once a stream drew after it or the
 * holder opened after it, "drawn" again when it held none or the counter
 * was lost and the holder (if any) opened before it (see the script's
 * header). Throws when Redis fails.
 */
export async function drawStreamGeneration(
  connection: RedisConnection,
  riderId: string,
  stream: { id: string; ageMs: number; held?: number },
): Promise<GenerationDraw> {
  const [status, generation] = (await connection.client.drawStreamGeneration(
    keys.riderStream(riderId),
    keys.riderStreamOpened(riderId),
    keys.riderStreamHolder(riderId),
    stream.id,
    Math.max(0, Math.round(stream.ageMs)),
    STREAM_GENERATION_TTL_S,
    stream.held === undefined ? "" : stream.held,
  )) as [GenerationDraw["status"], number];
  return { status, generation };
}

/** How long a new stream waits for the inbox subscription before announcing itself anyway. */
const SUBSCRIBE_WAIT_MS = 2_000;

/**
 * Settles a live stream's generation: draws it when the stream opens
 * ("open"), or rechecks the one it holds after an inbox gap ("recheck"),
 * and announces one it drew on the rider's inbox, so every node holding an
 * older stream of the rider ends it. While a draw is out the stream is
 * `pending`: an announcement it hears meanwhile supersedes it only if
 * higher than what it draws, so two draws crossing leave exactly one stream.
 */
export function createGenerationSettler(deps: {
  connection: RedisConnection;
  inbox: RiderInbox;
  /** The session clock, for the stream's age when it draws. */
  now: () => number;
  logger: Logger;
  supersede(riderId: string, stream: LiveStream): void;
}) {
  const { connection, inbox, now, logger, supersede } = deps;
  return async (riderId: string, stream: LiveStream, kind: "open" | "recheck"): Promise<void> => {
    const held = stream.generation === "pending" ? 0 : stream.generation;
    stream.generation = "pending";
    stream.highestSeen = 0;
    let generation = held;
    try {
      if (kind === "open")
        await settleWithin(inbox.subscribed(riderId), SUBSCRIBE_WAIT_MS, undefined);
      // An ended stream draws nothing: its INCR would supersede the rider's live stream elsewhere.
      if (stream.ended) {
        stream.generation = held;
        return;
      }
      const draw = await drawStreamGeneration(connection, riderId, {
        id: stream.id,
        ageMs: now() - stream.openedAtMs,
        held: kind === "recheck" ? held : undefined,
      });
      if (draw.status === "superseded") {
        stream.generation = held;
        supersede(riderId, stream);
        return;
      }
      generation = draw.generation;
      // A stream that ended while its recheck was out supersedes nobody: the rider closed it.
      if (draw.status === "drawn" && !(kind === "recheck" && stream.ended)) {
        if (kind === "recheck")
          logger.info({ riderId, generation }, "stream generation drawn after an inbox gap");
        await connection.client[connection.publishCommand](
          keys.riderInbox(riderId),
          encodeRiderInboxMessage({ type: "stream-opened", generation }),
        );
      }
    } catch (error) {
      logger.warn(
        { err: error, riderId },
        kind === "open"
          ? "stream generation not drawn; older streams elsewhere may stay open"
          : "stream generation not rechecked after an inbox gap",
      );
    }
    stream.generation = generation;
    if (stream.highestSeen > generation) supersede(riderId, stream);
  };
}
