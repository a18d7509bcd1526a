import type { Logger } from "pino";
import {
  type OfferMessage,
  offerMessage,
  parseFencingToken,
} from "../../core/messages/rider-inbox";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { readOrderRecord } from "../../core/redis/order-record";
import { type LiveStream, offerToStream } from "./live-stream";

/**
 * Catch-ups in flight at once: a standalone reconnect announces a gap on
 * every inbox channel, and each gap's catch-up is up to three commands, so
 * 10,000 streams would otherwise send ~30,000 commands the moment Redis is
 * back; streams opening together (riders reconnecting after a node went
 * away) each read their rider's pending offer, in the same line.
 */
export const MAX_CATCH_UPS_IN_FLIGHT = 64;

/**
 * The least time a caught-up offer must have left when it is sent: one
 * about to expire could not be read and answered in time (the accept would
 * come back `offer_expired`), so it is left to expire and be offered again.
 */
export const OFFER_MIN_ANSWER_MS = 2_000;

/**
 * Why a live stream is caught up from Redis:
 * - "open": it just opened, its generation drawn. An offer pushed while the
 *   rider had no stream here (a tunnel, the app killed and reopened) reached
 *   no one, and the rider stays locked as offered until it runs out: so the
 *   pending offer is read and sent. One read per stream opened.
 * - "gap": its rider's inbox subscription had a gap, and the messages sent
 *   meanwhile were missed: its generation is rechecked too (`recheck`:
 *   superseded by a newer stream, or drawn now if it held none). An open
 *   needs no recheck: it drew its generation just now.
 */
export type CatchUpReason = "open" | "gap";

/** A gap's catch-up does all an open's does, and more. */
const widest = (a: CatchUpReason | undefined, b: CatchUpReason): CatchUpReason =>
  a === "gap" ? a : b;

interface Pending {
  readonly riderId: string;
  readonly reason: CatchUpReason;
}

/**
 * Catches a live stream up from Redis on what the messages it missed would
 * have said (CatchUpReason): a pending offer it was not sent is sent
 * (offerToStream: never twice, so an offer pushed while the read is out is
 * sent once). A stream has one catch-up at a time, and waits in line at
 * most once: an open and a gap queued together make one gap's catch-up.
 */
export function createStreamCatchUp(deps: {
  connection: RedisConnection;
  now: () => number;
  logger: Logger;
  recheck(riderId: string, stream: LiveStream): Promise<void>;
}) {
  const { connection, now, logger, recheck } = deps;
  /**
   * Streams waiting for a slot, first come first served: a gap while one waits adds nothing
   * (to an open waiting, its recheck).
   */
  const waiting = new Map<LiveStream, Pending>();
  const running = new Set<LiveStream>();
  /** Streams with a gap while their catch-up ran (its reads may predate it): they go again. */
  const again = new Map<LiveStream, Pending>();

  function queue(riderId: string, stream: LiveStream, reason: CatchUpReason): void {
    const line = running.has(stream) ? again : waiting;
    if (line === again || !stream.ended)
      line.set(stream, { riderId, reason: widest(line.get(stream)?.reason, reason) });
    next();
  }

  function next(): void {
    for (const [stream, { riderId, reason }] of waiting) {
      if (running.size >= MAX_CATCH_UPS_IN_FLIGHT) return;
      waiting.delete(stream);
      running.add(stream);
      catchUp(riderId, stream, reason)
        .catch((error: unknown) =>
          logger.warn(
            { err: error, riderId, reason },
            reason === "open"
              ? "new live stream not sent its pending offer"
              : "live stream not checked after an inbox gap",
          ),
        )
        .finally(() => {
          running.delete(stream);
          const pending = again.get(stream);
          again.delete(stream);
          if (pending === undefined) next();
          else queue(pending.riderId, stream, pending.reason);
        });
    }
  }

  async function catchUp(
    riderId: string,
    stream: LiveStream,
    reason: CatchUpReason,
  ): Promise<void> {
    if (stream.ended) return;
    if (reason === "gap") await recheck(riderId, stream);
    if (stream.ended) return;
    const offer = await readPendingOffer(connection, { riderId, city: stream.city }, now);
    const before = stream.lastOfferSeq;
    if (offer) offerToStream(stream, offer, now());
    logger.debug(
      { riderId, reason, offerSent: stream.lastOfferSeq !== before, catchUpsRunning: running.size },
      "live stream caught up",
    );
  }

  /** Queues the stream's catch-up once its first draw is done (no slot held while that is out). */
  return (riderId: string, stream: LiveStream, reason: CatchUpReason): void => {
    stream.announced.then(() => queue(riderId, stream, reason));
  };
}

/**
 * The rider's pending offer as the gateway pushed it, rebuilt from Redis:
 * the rider lock (create-offer.lua) holds its fencing token and lives as
 * long as the offer, and the order's record holds the rest. Undefined when
 * the rider has no pending offer, its order no longer waits for a rider, or
 * less than OFFER_MIN_ANSWER_MS of it is left once read. The expiry is the
 * lock's TTL (read with the token, in one transaction) counted from before
 * the read: never later than the lock's own, so the rider is never told it
 * has longer than it has.
 */
async function readPendingOffer(
  connection: RedisConnection,
  rider: { riderId: string; city: string },
  now: () => number,
): Promise<OfferMessage | undefined> {
  const key = keys.offerForRider(rider.city, rider.riderId);
  const readAtMs = now();
  const replies = await connection.client.multi().get(key).pttl(key).exec();
  const [fencingToken, ttlMs] = [replies?.[0]?.[1], replies?.[1]?.[1]];
  if (typeof fencingToken !== "string" || typeof ttlMs !== "number" || ttlMs <= 0) return undefined;
  const orderId = parseFencingToken(fencingToken)?.orderId;
  const order =
    orderId === undefined ? undefined : await readOrderRecord(connection.client, orderId);
  if (!order || order.city !== rider.city || order.status !== "CONFIRMED") return undefined;
  const expiresAtMs = readAtMs + ttlMs;
  if (expiresAtMs - now() < OFFER_MIN_ANSWER_MS) return undefined;
  return offerMessage(order, { fencingToken, expiresAtMs });
}
