import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { KeyRef } from "../../core/auth/jwks-keys";
import type { RiderInboxMessage } from "../../core/messages/rider-inbox";
import { keys } from "../../core/redis/keys";
import {
  type LiveStream,
  type LiveStreamEvents,
  offerToStream,
  type StreamEnd,
} from "./live-stream";
import type { RiderInbox } from "./rider-inbox";
import { RiderSession, type SessionEnvironment } from "./rider-session";
import { createStreamCatchUp } from "./stream-catch-up";
import { createGenerationSettler } from "./stream-generation";

export type { LiveStreamEvents, StreamEnd } from "./live-stream";

export interface RiderIdentity {
  readonly riderId: string;
  readonly city: string;
  /** The token's expiry (Unix seconds): a live stream ends with it (wire/stream-pings.ts). */
  readonly exp: number;
  /** With a JWKS, the key that signed the token: a live stream ends when it is revoked. */
  readonly key?: KeyRef;
}

/** A rider's session borrowed by one call; give it back with `release`. */
export interface SessionLease {
  readonly session: RiderSession;
  release(): void;
}

/**
 * How long an idle session keeps listening to the rider's inbox: past the
 * longest ping interval (parked, 30 s), so a rider on unary pings costs one
 * SUBSCRIBE when it starts, not a SUBSCRIBE, an UNSUBSCRIBE and a read of
 * its orders per ping.
 */
export const INBOX_LINGER_MS = 60_000;

interface Held {
  readonly session: RiderSession;
  calls: number;
  stopListening?: () => void;
}

/**
 * The rider sessions of this process: one per rider with a call here (and
 * a bounded number of idle ones, so unary pings do not read Redis each
 * time; an idle one keeps listening to the rider's inbox for
 * INBOX_LINGER_MS, so its orders stay current without a read), and the rule of one live StreamPings per rider across every node.
 *
 * A new StreamPings supersedes the rider's older one at once on this node.
 * Across nodes it draws the next generation from `rider:{r}:stream` (INCR)
 * and announces it on the rider's inbox channel; every node ends a stream
 * of that rider holding a lower generation. A stream whose draw failed
 * (Redis away) counts as generation 0: the next announcement ends it, or
 * it draws once Redis is back (below).
 *
 * After a gap in the inbox subscription (a reconnect, a failover) the
 * messages sent meanwhile are caught up from Redis: the session reads its
 * orders before its next publish, and a live stream is caught up
 * (stream-catch-up.ts): its generation is rechecked, and one that holds
 * none (or whose counter was lost) draws it then, unless a stream opened
 * after it holds the counter (draw-stream-generation.lua records the
 * holder's id and its opening on Redis's clock: no node clocks compared),
 * and a pending offer it was not sent is sent. A stream that opens is sent
 * the rider's pending offer too, once its generation is drawn: one pushed
 * while the rider had no stream reached no one (one Redis read per stream
 * opened, in the catch-ups' line).
 */
export function createRiderSessions(deps: {
  env: SessionEnvironment;
  inbox: RiderInbox;
  /** Idle sessions kept for riders without an open call (unary pings). */
  maxIdle: number;
  /** How long an idle session keeps listening to its inbox (INBOX_LINGER_MS). */
  inboxLingerMs?: number;
  logger: Logger;
}) {
  const { env, inbox, maxIdle, inboxLingerMs = INBOX_LINGER_MS, logger } = deps;
  const held = new Map<string, Held>();
  /** Idle sessions, least recently released first. */
  const idle = new Map<string, RiderSession>();
  /** Inbox listeners of idle sessions, least recently released first, and when each stops. */
  const lingering = new Map<string, { stop: () => void; until: number }>();
  let lingerTimerSet = false;
  const live = new Map<string, LiveStream>();
  /** Cities this process has registered for the stale-rider sweep. */
  const registeredCities = new Set<string>();
  let drainingAfterMs: number | undefined;
  const catchUpStream = createStreamCatchUp({
    connection: env.connection,
    now: env.now,
    logger,
    recheck: (riderId, stream) => settleGeneration(riderId, stream, "recheck"),
  });
  const settleGeneration = createGenerationSettler({
    connection: env.connection,
    inbox,
    now: env.now,
    logger,
    supersede: (riderId, stream) => end(riderId, stream, { kind: "superseded" }),
  });

  function onInbox(riderId: string, message: RiderInboxMessage): void {
    if (message.type === "orders-changed")
      (held.get(riderId)?.session ?? idle.get(riderId))?.ordersChanged();
    else if (message.type === "offer") {
      const stream = live.get(riderId);
      if (stream) offerToStream(stream, message, env.now());
    } else {
      const stream = live.get(riderId);
      if (!stream) return;
      if (stream.generation === "pending")
        stream.highestSeen = Math.max(stream.highestSeen, message.generation);
      else if (message.generation > stream.generation) end(riderId, stream, { kind: "superseded" });
    }
  }

  /** The rider's inbox had a gap: catch up from Redis on what its messages would have said. */
  function onInboxGap(riderId: string): void {
    (held.get(riderId)?.session ?? idle.get(riderId))?.ordersChanged();
    const stream = live.get(riderId);
    if (stream) catchUpStream(riderId, stream, "gap");
  }

  function end(riderId: string, stream: LiveStream, reason: StreamEnd): void {
    if (stream.ended) return;
    stream.ended = true;
    if (live.get(riderId) === stream) live.delete(riderId);
    if (reason.kind === "superseded") env.metrics.streamsSuperseded.inc();
    stream.events.end(reason);
  }

  function acquire(rider: RiderIdentity): SessionLease {
    let entry = held.get(rider.riderId);
    if (!entry || entry.session.city !== rider.city) {
      let session = idle.get(rider.riderId);
      idle.delete(rider.riderId);
      const listening = lingering.get(rider.riderId);
      lingering.delete(rider.riderId);
      if (session?.city !== rider.city) session = new RiderSession(rider, env);
      // Nobody listened to its inbox since its linger ran out.
      else if (!listening) session.ordersChanged();
      entry = { session, calls: 0 };
      held.set(rider.riderId, entry);
      entry.stopListening =
        listening?.stop ??
        inbox.listen(rider.riderId, {
          message: (message) => onInbox(rider.riderId, message),
          gap: () => onInboxGap(rider.riderId),
        });
    }
    registerCity(rider.city);
    entry.calls += 1;
    const current = entry;
    let released = false;
    return {
      session: current.session,
      release() {
        if (released) return;
        released = true;
        current.calls -= 1;
        if (current.calls > 0) return;
        // A session replaced meanwhile (the rider's token named another city) is just dropped.
        if (held.get(rider.riderId) !== current) {
          current.stopListening?.();
          return;
        }
        held.delete(rider.riderId);
        idle.set(rider.riderId, current.session);
        if (current.stopListening) linger(rider.riderId, current.stopListening);
        if (idle.size > maxIdle) forget(idle.keys().next().value as string);
      },
    };
  }

  function linger(riderId: string, stop: () => void): void {
    lingering.set(riderId, { stop, until: performance.now() + inboxLingerMs });
    if (lingerTimerSet) return;
    lingerTimerSet = true;
    setTimeout(stopLingering, inboxLingerMs).unref();
  }

  /** Stops the idle listeners whose time is up; comes back for the next one. */
  function stopLingering(): void {
    lingerTimerSet = false;
    const now = performance.now();
    for (const [riderId, listener] of lingering) {
      if (listener.until > now) {
        lingerTimerSet = true;
        setTimeout(stopLingering, listener.until - now).unref();
        return;
      }
      lingering.delete(riderId);
      listener.stop();
    }
  }

  /** Drops an idle session (the least recently used, past `maxIdle`). */
  function forget(riderId: string): void {
    idle.delete(riderId);
    lingering.get(riderId)?.stop();
    lingering.delete(riderId);
  }

  /** The stale-rider sweep walks `geo:cities`: a city gets in once per process. */
  function registerCity(city: string): void {
    if (registeredCities.has(city) || !env.connection.isReady()) return;
    registeredCities.add(city);
    env.connection.client.sadd(keys.cities(), city).catch(() => registeredCities.delete(city));
  }

  return {
    acquire,

    isDraining: () => drainingAfterMs !== undefined,

    /** The cities this process has had riders in (the stale-rider sweep keeps them in `geo:cities`). */
    cities: (): readonly string[] => [...registeredCities],

    /**
     * Opens the rider's live stream: the older one on this node ends at
     * once, older ones elsewhere when the announcement reaches them. Once
     * its generation is drawn it is sent the rider's pending offer, if any
     * (the app reconnected after a tunnel, or was killed and reopened,
     * while it was pushed). The session lease is the caller's to release
     * when the call ends.
     */
    openLiveStream(rider: RiderIdentity, events: LiveStreamEvents): SessionLease {
      const lease = acquire(rider);
      const previous = live.get(rider.riderId);
      if (previous) end(rider.riderId, previous, { kind: "superseded" });
      const stream: LiveStream = {
        events: {
          offer(offer, expiresInMs) {
            env.metrics.offersDelivered.inc();
            events.offer(offer, expiresInMs);
          },
          end: (reason) => events.end(reason),
        },
        city: rider.city,
        id: randomUUID(),
        openedAtMs: env.now(),
        generation: "pending",
        announced: Promise.resolve(),
        highestSeen: 0,
        lastOfferSeq: 0,
        ended: false,
      };
      live.set(rider.riderId, stream);
      env.metrics.streams.inc();
      stream.announced = settleGeneration(rider.riderId, stream, "open");
      // After the draw, which waits for the inbox subscription: an offer made after the read is pushed.
      catchUpStream(rider.riderId, stream, "open");
      let released = false;
      return {
        session: lease.session,
        release() {
          if (released) return;
          released = true;
          stream.ended = true;
          if (live.get(rider.riderId) === stream) live.delete(rider.riderId);
          lease.release();
          env.metrics.streams.dec();
        },
      };
    },

    /** Tells every live stream to come back after `afterMs`; returns how many were told. */
    drain(afterMs: number): number {
      drainingAfterMs = afterMs;
      const streams = [...live];
      for (const [riderId, stream] of streams) end(riderId, stream, { kind: "draining", afterMs });
      return streams.length;
    },
  };
}

export type RiderSessions = ReturnType<typeof createRiderSessions>;
