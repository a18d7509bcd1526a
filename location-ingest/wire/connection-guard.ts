import type { Http2Session, ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { type IngestMetrics, limitHitReporter, type TransportLimit } from "../metrics";
import type { TransportLimits } from "../transport-config";
import { createConnectionCap } from "./connection-cap";

/** What the guard knows of one h2c connection. */
export interface GuardedConnection {
  /** A stream opened on it; `riderCall` once its call was admitted for a rider. */
  streamOpened(): void;
  riderCallOpened(): void;
  streamClosed(riderCall: boolean): void;
  /** Request bytes arrived: the peer is alive, no keep-alive PING needed yet. */
  touch(): void;
}

interface Connection extends GuardedConnection {
  readonly session: ServerHttp2Session;
  /** The client's address and port, for the debug lines. */
  readonly peer: string;
  /** The TCP socket under the session, once the server's "connection" event named it. */
  socket: Socket | undefined;
  readonly openedAt: number;
  prefaceDone: boolean;
  streams: number;
  riderCalls: number;
  /** When the last stream closed (or the connection opened). */
  idleSince: number;
  /** Counted by touch(); the sweep turns a change into lastReadAt (no clock read per chunk). */
  reads: number;
  readsSeen: number;
  lastReadAt: number;
  pingSentAt: number | undefined;
  closingSince: number | undefined;
}

/** A connection told to go away (GOAWAY) that is still open after this is cut. */
const GOAWAY_GRACE_MS = 1_000;

/**
 * The h2c port's connection limits, per process:
 * - the port's connection cap (connection-cap.ts): a connection still in
 *   the HTTP/2 preface counts as not started, one without a rider call as
 *   idle; a refused one is closed at once;
 * - the preface deadline, the idle timeout (no open stream) and keep-alive
 *   PINGs on connections that carry streams but went silent, so a phone that
 *   vanished without a FIN is noticed and its streams end.
 * One timer walks every connection; its period is a fraction of the
 * shortest limit (at most a second). Each connection opened is counted and
 * each open, close and limit hit logged at debug with the peer.
 *
 * Bun (1.4.5) only half-closes the TCP socket when a server session is
 * destroyed or closed: the descriptor stays open until the peer closes its
 * side, which an attacker never does. So the guard also holds each session's
 * socket (from the server's "connection" event, matched by the peer's
 * address and port) and destroys it whenever the session ends.
 */
export function createConnectionGuard(deps: {
  limits: TransportLimits;
  metrics: IngestMetrics;
  logger: Logger;
  now?: () => number;
}) {
  const { limits, metrics, logger, now = Date.now } = deps;
  const bySession = new WeakMap<Http2Session, Connection>();
  /** Sessions and sockets seen by one event and not yet by the other, by peer address. */
  const unmatchedSockets = new Map<string, Socket>();
  const unmatchedSessions = new Map<string, { socket: Socket | undefined }>();
  const count = limitHitReporter(metrics, logger);
  const open = createConnectionCap<Connection>({
    max: limits.maxConnections,
    port: "h2c",
    logger,
    now,
    evict(victim) {
      metrics.connections.set(open.size);
      cut(victim, "connection_evicted");
    },
  });

  /** Cuts a connection at once (its streams, if any, end). */
  function cut(connection: Connection, limit: TransportLimit): void {
    count(limit, { peer: connection.peer });
    connection.session.destroy();
    connection.socket?.destroy();
  }

  /**
   * Pairs a session with its socket, whichever of the two events came first
   * (Bun emits "connection" right after "session", in the same tick).
   */
  function pair(
    key: string,
    session: ServerHttp2Session,
    holder: { socket: Socket | undefined },
  ): void {
    const socket = unmatchedSockets.get(key);
    if (socket) {
      unmatchedSockets.delete(key);
      holder.socket = socket;
      return;
    }
    unmatchedSessions.set(key, holder);
    session.once("close", () => {
      if (unmatchedSessions.get(key) === holder) unmatchedSessions.delete(key);
    });
  }

  /** The server's "connection" event: the socket a session runs on. */
  function attach(socket: Socket): void {
    const key = peerOf(socket);
    const holder = unmatchedSessions.get(key);
    if (holder) {
      unmatchedSessions.delete(key);
      holder.socket = socket;
      // The session was refused or has already ended.
      if (!open.has(holder as Connection)) socket.destroy();
      return;
    }
    unmatchedSockets.set(key, socket);
    socket.once("close", () => {
      if (unmatchedSockets.get(key) === socket) unmatchedSockets.delete(key);
    });
  }

  function add(session: ServerHttp2Session): void {
    const key = peerOf(session.socket);
    if (!open.admit()) {
      count("connection_refused", { peer: key });
      const refused = { socket: undefined as Socket | undefined };
      pair(key, session, refused);
      session.destroy();
      refused.socket?.destroy();
      return;
    }
    const at = now();
    const connection: Connection = {
      session,
      peer: key,
      socket: undefined,
      openedAt: at,
      prefaceDone: false,
      streams: 0,
      riderCalls: 0,
      idleSince: at,
      reads: 0,
      readsSeen: 0,
      lastReadAt: at,
      pingSentAt: undefined,
      closingSince: undefined,
      streamOpened() {
        connection.streams += 1;
      },
      riderCallOpened() {
        connection.riderCalls += 1;
        open.working(connection);
      },
      streamClosed(riderCall) {
        connection.streams -= 1;
        if (connection.streams === 0) connection.idleSince = now();
        if (!riderCall) return;
        connection.riderCalls -= 1;
        if (connection.riderCalls === 0) open.idle(connection);
      },
      touch() {
        connection.reads += 1;
      },
    };
    open.add(connection);
    bySession.set(session, connection);
    metrics.connections.set(open.size);
    metrics.connectionsOpened.inc();
    logger.debug({ peer: key }, "h2c connection opened");
    session.once("remoteSettings", () => {
      connection.prefaceDone = true;
      open.started(connection);
    });
    // Bun answers bytes that are not the HTTP/2 preface with GOAWAY and closes: count it.
    session.on("error", () => {
      if (!connection.prefaceDone) count("not_http2", { peer: key });
    });
    session.once("close", () => {
      forget(connection);
      connection.socket?.destroy();
      logger.debug({ peer: key, ms: now() - connection.openedAt }, "h2c connection closed");
    });
    pair(key, session, connection);
  }

  function forget(connection: Connection): void {
    if (open.forget(connection)) metrics.connections.set(open.size);
  }

  function ping(connection: Connection): void {
    connection.pingSentAt = now();
    const sent = connection.session.ping((error) => {
      if (error) return;
      connection.pingSentAt = undefined;
      connection.lastReadAt = now();
    });
    if (!sent) connection.pingSentAt = undefined;
  }

  function sweep(): void {
    const at = now();
    for (const connection of open) {
      const { session } = connection;
      if (connection.reads !== connection.readsSeen) {
        connection.readsSeen = connection.reads;
        connection.lastReadAt = at;
      }
      if (connection.closingSince !== undefined) {
        if (at - connection.closingSince >= GOAWAY_GRACE_MS) {
          session.destroy();
          connection.socket?.destroy();
        }
      } else if (!connection.prefaceDone) {
        if (at - connection.openedAt >= limits.prefaceTimeoutMs) cut(connection, "preface_timeout");
      } else if (connection.streams === 0) {
        if (at - connection.idleSince >= limits.idleTimeoutMs) {
          count("idle_timeout", { peer: connection.peer });
          connection.closingSince = at;
          session.close();
        }
      } else if (connection.pingSentAt !== undefined) {
        if (at - connection.pingSentAt >= limits.keepaliveTimeoutMs) {
          cut(connection, "keepalive_timeout");
        }
      } else if (at - connection.lastReadAt >= limits.keepaliveMs) {
        ping(connection);
      }
    }
  }

  const shortest = Math.min(
    limits.prefaceTimeoutMs,
    limits.idleTimeoutMs,
    limits.keepaliveMs,
    limits.keepaliveTimeoutMs,
  );
  const ticker = setInterval(sweep, Math.max(10, Math.min(1_000, Math.floor(shortest / 5))));
  ticker.unref();

  return {
    add,
    attach,
    /** The guarded record of a stream's connection (undefined once it was cut). */
    of(session: Http2Session | undefined): GuardedConnection | undefined {
      return session ? bySession.get(session) : undefined;
    },
    get size() {
      return open.size;
    },
    stop(): void {
      clearInterval(ticker);
    },
  };
}

export type ConnectionGuard = ReturnType<typeof createConnectionGuard>;

function peerOf(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
