import { type OfferMessage, parseFencingToken } from "../../core/messages/rider-inbox";

/** Why a live stream ends from the server's side. */
export type StreamEnd =
  /** A newer StreamPings of the rider opened (on this node or another): do not reconnect this one. */
  | { readonly kind: "superseded" }
  /** The node is draining: reconnect after `afterMs`. */
  | { readonly kind: "draining"; readonly afterMs: number };

/** What a StreamPings call hears from the rider's session besides its acks. */
export interface LiveStreamEvents {
  /**
   * An offer and the time it has left as it is sent (ms, at least 1): what
   * the rider's app counts down from, as its clock may be off the server's.
   */
  offer(offer: OfferMessage, expiresInMs: number): void;
  end(reason: StreamEnd): void;
}

/** A rider's live StreamPings on this node. */
export interface LiveStream {
  readonly events: LiveStreamEvents;
  readonly city: string;
  /** Unique per stream: the rider's generation counter records which stream holds it. */
  readonly id: string;
  /**
   * When it opened (the session clock). Of two streams the one opened later
   * is the rider's; only its age leaves the node, so clocks of different
   * nodes are never compared (draw-stream-generation.lua).
   */
  readonly openedAtMs: number;
  /**
   * Its generation once drawn; `pending` while a draw (or a recheck after an
   * inbox gap) is out; 0 when the draw failed.
   */
  generation: number | "pending";
  /** The first draw and its announcement; resolves once `generation` is a number. */
  announced: Promise<void>;
  /** The highest generation announced while a draw was out. */
  highestSeen: number;
  /** The fencing token seq of the last offer sent down this stream (0: none yet). */
  lastOfferSeq: number;
  ended: boolean;
}

/**
 * Sends an offer down the stream, with the time it has left at `nowMs`,
 * unless one with the same or a later token was sent: an offer arrives by
 * its push and, as the stream opens or after an inbox gap, by a catch-up's
 * read of Redis, and a read that began before a newer offer was pushed may
 * return the older (dead) one after it. Token seqs rise per city. An offer with no time left
 * (its push came late) is not sent: it could not be accepted, and a time
 * left of 0 would read as unset on the wire.
 */
export function offerToStream(stream: LiveStream, offer: OfferMessage, nowMs: number): void {
  const seq = parseFencingToken(offer.fencingToken)?.seq;
  const expiresInMs = offer.expiresAtMs - nowMs;
  if (stream.ended || seq === undefined || seq <= stream.lastOfferSeq || expiresInMs <= 0) return;
  stream.lastOfferSeq = seq;
  stream.events.offer(offer, expiresInMs);
}
