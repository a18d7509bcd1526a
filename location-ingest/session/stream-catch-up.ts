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
 * every inbox channel, and each catch-up is up to three commands, so 10,000
 * streams would otherwise send ~30,000 commands the moment Redis is back.
 */
export const MAX_CATCH_UPS_IN_FLIGHT = 64;

/**
 * Catches a live stream up after a gap in its rider's inbox subscription, on
 * what the messages missed would have said: a higher generation in
 * `rider:{r}:stream` supersedes it (`supersede`), and a pending offer it was
 * not sent is sent (offerToStream).
 */
export function createStreamCatchUp(deps: {
  connection: RedisConnection;
  now: () => number;
  logger: Logger;
  supersede(riderId: string, stream: LiveStream): void;
}) {
  const { connection, now, logger, supersede } = deps;
  const waiting: { riderId: string; stream: LiveStream }[] = [];
  let inFlight = 0;

  function next(): void {
    while (inFlight < MAX_CATCH_UPS_IN_FLIGHT && waiting.length > 0) {
      const { riderId, stream } = waiting.shift() as (typeof waiting)[number];
      inFlight += 1;
      catchUp(riderId, stream)
        .catch((error: unknown) =>
          logger.warn({ err: error, riderId }, "live stream not checked after an inbox gap"),
        )
        .finally(() => {
          inFlight -= 1;
          next();
        });
    }
  }

  async function catchUp(riderId: string, stream: LiveStream): Promise<void> {
    const { generation } = stream;
    // A stream whose draw failed holds no generation to compare: the next announcement ends it.
    if (stream.ended || typeof generation !== "number" || generation === 0) return;
    const newest = Number(await connection.client.get(keys.riderStream(riderId)));
    if (stream.ended) return;
    if (newest > generation) {
      supersede(riderId, stream);
      return;
    }
    const offer = await readPendingOffer(connection, { riderId, city: stream.city }, now);
    const before = stream.lastOfferSeq;
    if (offer) offerToStream(stream, offer);
    logger.debug(
      { riderId, offerSent: stream.lastOfferSeq !== before },
      "live stream caught up after an inbox gap",
    );
  }

  /** Queues the stream's catch-up once its generation is drawn (no slot held while the draw is out). */
  return (riderId: string, stream: LiveStream): void => {
    stream.announced.then(() => {
      waiting.push({ riderId, stream });
      next();
    });
  };
}

/**
 * The rider's pending offer as the gateway pushed it, rebuilt from Redis:
 * the rider lock (create-offer.lua) holds its fencing token and lives as
 * long as the offer, and the order's record holds the rest. Undefined when
 * the rider has no pending offer or its order no longer waits for a rider.
 * The expiry is the lock's, read now: within a few ms of the pushed one.
 */
async function readPendingOffer(
  connection: RedisConnection,
  rider: { riderId: string; city: string },
  now: () => number,
): Promise<OfferMessage | undefined> {
  const key = keys.offerForRider(rider.city, rider.riderId);
  const replies = await connection.client.multi().get(key).pttl(key).exec();
  const [fencingToken, ttlMs] = [replies?.[0]?.[1], replies?.[1]?.[1]];
  if (typeof fencingToken !== "string" || typeof ttlMs !== "number" || ttlMs <= 0) return undefined;
  const orderId = parseFencingToken(fencingToken)?.orderId;
  const order =
    orderId === undefined ? undefined : await readOrderRecord(connection.client, orderId);
  if (!order || order.city !== rider.city || order.status !== "CONFIRMED") return undefined;
  return offerMessage(order, { fencingToken, expiresAtMs: now() + ttlMs });
}
