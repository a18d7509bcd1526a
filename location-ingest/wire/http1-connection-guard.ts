import type { Socket, TCPSocketListener } from "bun";
import type { Logger } from "pino";
import type { TransportLimits } from "../config";
import { type IngestMetrics, limitHitReporter, type TransportLimit } from "../metrics";
import { createConnectionCap } from "./connection-cap";

/** One side of a connection through the front: the client's socket, or the front's to the server. */
interface Side {
  readonly connection: Http1Connection;
  socket: Socket<Side> | undefined;
  /** Bytes for this side the kernel did not take yet; the other side is paused meanwhile. */
  pending: Buffer | undefined;
  /** The other side half-closed: end this one once `pending` is written. */
  ending: boolean;
}

interface Http1Connection {
  readonly peer: string;
  readonly client: Side;
  /** The front's own connection to the HTTP server. */
  readonly server: Side;
  /** Requests the HTTP server is answering on it. */
  requests: number;
  /** When the first byte of a request head not yet handed to the server arrived. */
  headSince: number | undefined;
  /** When its last request was answered (or it opened). */
  idleSince: number;
  /** When the server closed its side: the answer is flushed, then the client is cut. */
  closingSince: number | undefined;
  readonly openedAt: number;
  /** Its connection to the server is open or on its way (from the client's first byte). */
  connecting: boolean;
  closed: boolean;
}

/**
 * The most bytes waiting for one side: the sender is paused from its first
 * waiting byte, so only what a socket had already read comes on top (a few
 * read buffers, 512 KiB at most each); more is a relay gone wrong.
 */
const PENDING_MAX_BYTES = 4 * 1024 * 1024;

/** A client whose server side closed is destroyed this long after, FIN answered or not. */
const CLOSE_GRACE_MS = 1_000;

/** The port's own time limits, checked by one sweep (its period a fraction of the shortest). */
function sweepEveryMs(limits: TransportLimits): number {
  const shortest = Math.min(limits.httpHeadTimeoutMs, limits.httpIdleTimeoutS * 1_000);
  return Math.max(10, Math.min(1_000, Math.floor(shortest / 5)));
}

/**
 * The HTTP/1.1 port's connection limits, per process: the port's connection
 * cap (connection-cap.ts; a connection that never completed a request head
 * counts as not started, one without a request being answered as idle), a
 * deadline for each request head (request line and headers: slowloris) and
 * an idle timeout. Each hit is counted as a transport limit.
 *
 * Bun.serve says nothing of a connection before its first request (and
 * node:http under Bun emits "connection" only then), so the port's listener
 * is a TCP front in the same process (Bun.listen; Bun.connect to the
 * server): it accepts, counts and times each connection and copies its
 * bytes both ways to the HTTP server on a loopback port, each chunk
 * written straight to the other socket (what the kernel does not take
 * waits, and the sending side is paused until it drains). The server marks
 * a connection working while it answers (`requestStarted`), matched by the
 * front's outbound address and port; a request that did not come through the front (a
 * local process on the loopback port) is not the port's and is refused.
 * A connection costs one descriptor until its first byte, three after.
 */
export function createHttp1ConnectionGuard(deps: {
  limits: TransportLimits;
  metrics: IngestMetrics;
  logger: Logger;
  now?: () => number;
}) {
  const { limits, metrics, logger, now = Date.now } = deps;
  const count = limitHitReporter(metrics, logger);
  /** Each connection by its front-to-server socket's local "address:port" (what the server sees as its peer). */
  const byServerSide = new Map<string, Http1Connection>();
  let front: TCPSocketListener<Side> | undefined;
  /** The HTTP server's loopback port (listen). */
  let serverPort = 0;
  const open = createConnectionCap<Http1Connection>({
    max: limits.httpMaxConnections,
    port: "HTTP/1.1",
    logger,
    now,
    evict: (victim) => cut(victim, "http_connection_evicted"),
  });

  function close(connection: Http1Connection): void {
    if (connection.closed) return;
    connection.closed = true;
    connection.client.socket?.terminate();
    connection.server.socket?.terminate();
    if (!open.forget(connection)) return;
    metrics.httpConnections.set(open.size);
    logger.debug(
      { peer: connection.peer, ms: now() - connection.openedAt },
      "http connection closed",
    );
  }

  function cut(connection: Http1Connection, limit: TransportLimit): void {
    count(limit, { peer: connection.peer });
    close(connection);
  }

  const otherSide = (side: Side) =>
    side === side.connection.client ? side.connection.server : side.connection.client;

  /**
   * Writes `chunk` to `to`; what the kernel did not take (or all of it, while
   * the front's connection to the server is still opening) waits, and the
   * sender is paused until `flush` writes it. A paused socket may still hand
   * over what it had read: past PENDING_MAX_BYTES the connection is cut.
   */
  function forward(to: Side, chunk: Buffer): void {
    if (to.pending || !to.socket) {
      to.pending = to.pending ? Buffer.concat([to.pending, chunk]) : Buffer.from(chunk);
      otherSide(to).socket?.pause();
      if (to.pending.byteLength > PENDING_MAX_BYTES) {
        logger.warn({ peer: to.connection.peer }, "http connection cut: relay backlog too large");
        close(to.connection);
      }
      return;
    }
    const written = to.socket.write(chunk);
    if (written >= chunk.byteLength) return;
    to.pending = Buffer.from(chunk.subarray(Math.max(0, written)));
    otherSide(to).socket?.pause();
  }

  /** `to` can take bytes again (connected, or drained): writes what waits, then ends if asked. */
  function flush(to: Side): void {
    const socket = to.socket;
    if (!socket) return;
    const pending = to.pending;
    if (pending) {
      const written = socket.write(pending);
      if (written < pending.byteLength) {
        to.pending = pending.subarray(Math.max(0, written));
        return;
      }
      to.pending = undefined;
      otherSide(to).socket?.resume();
    }
    if (to.ending) socket.end();
  }

  /** The other side half-closed: end `to` once what waits for it is written. */
  function endAfterPending(to: Side): void {
    to.ending = true;
    if (!to.pending) to.socket?.end();
  }

  function accept(client: Socket<Side>): void {
    const peer = `${client.remoteAddress}:${client.remotePort}`;
    if (!open.admit()) {
      count("http_connection_refused", { peer });
      client.terminate();
      return;
    }
    const connection = {
      peer,
      requests: 0,
      headSince: undefined,
      idleSince: now(),
      closingSince: undefined,
      openedAt: now(),
      connecting: false,
      closed: false,
    } as Omit<Http1Connection, "client" | "server"> as Http1Connection;
    const side = (socket: Socket<Side> | undefined): Side => ({
      connection,
      socket,
      pending: undefined,
      ending: false,
    });
    Object.assign(connection, { client: side(client), server: side(undefined) });
    client.data = connection.client;
    open.add(connection);
    metrics.httpConnections.set(open.size);
    logger.debug({ peer }, "http connection opened");
  }

  /**
   * The front's connection to the HTTP server, opened at the client's first
   * byte: until then a connection holds one descriptor, so idle sockets
   * (the flood the cap is for) cost the server side nothing, and one cut
   * before it sends leaves no connect behind.
   */
  function connectServer(connection: Http1Connection): void {
    connection.connecting = true;
    let serverSide: string | undefined;
    Bun.connect<Side>({
      hostname: "127.0.0.1",
      port: serverPort,
      data: connection.server,
      socket: {
        open(server) {
          if (connection.closed) return server.terminate();
          connection.server.socket = server;
          serverSide = `${server.localAddress}:${server.localPort}`;
          byServerSide.set(serverSide, connection);
          flush(connection.server);
        },
        data: (_server, chunk) => forward(connection.client, chunk),
        drain: () => flush(connection.server),
        // The server is done with it: the answer is flushed and the client sent FIN, then cut.
        end() {
          connection.closingSince ??= now();
          endAfterPending(connection.client);
        },
        close(_server, error) {
          if (serverSide !== undefined) byServerSide.delete(serverSide);
          if (error) return close(connection);
          connection.closingSince ??= now();
          endAfterPending(connection.client);
        },
        connectError: () => close(connection),
      },
    }).catch(() => close(connection));
  }

  const clientHandlers = {
    data(client: Socket<Side>, chunk: Buffer) {
      const connection = client.data.connection;
      // Bytes while no request is being answered start a request head.
      if (connection.requests === 0) connection.headSince ??= now();
      if (!connection.connecting) connectServer(connection);
      forward(connection.server, chunk);
    },
    drain: (client: Socket<Side>) => flush(client.data),
    end: (client: Socket<Side>) => endAfterPending(client.data.connection.server),
    // A refused client never got its side.
    close: (client: Socket<Side | undefined>) => client.data && close(client.data.connection),
  };

  function sweep(): void {
    const at = now();
    for (const connection of open) {
      if (connection.closingSince !== undefined) {
        if (at - connection.closingSince >= CLOSE_GRACE_MS) close(connection);
      } else if (connection.requests > 0) {
        // Being answered: a slow body is the message guard's (message_timeout).
      } else if (connection.headSince !== undefined) {
        if (at - connection.headSince >= limits.httpHeadTimeoutMs) {
          cut(connection, "http_head_timeout");
        }
      } else if (at - connection.idleSince >= limits.httpIdleTimeoutS * 1_000) {
        cut(connection, "http_idle_timeout");
      }
    }
  }
  const ticker = setInterval(sweep, sweepEveryMs(limits));
  ticker.unref();

  return {
    /** Listens on the public port, piping each connection to the HTTP server on `httpServerPort`. */
    async listen(port: number, host: string, httpServerPort: number): Promise<number> {
      serverPort = httpServerPort;
      front = Bun.listen<Side>({
        hostname: host,
        port,
        socket: {
          open: accept,
          ...clientHandlers,
        },
      });
      return front.port;
    },
    /**
     * The HTTP server started answering a request from `peer` (its
     * requestIP); call the result once answered. Undefined for a request
     * that did not come through the front: matched by address and port, as
     * a local process can bind any of 127.0.0.0/8 with a live connection's
     * port and reach the server on 127.0.0.1.
     */
    requestStarted(peer: { address: string; port: number } | null): (() => void) | undefined {
      const connection = peer ? byServerSide.get(`${peer.address}:${peer.port}`) : undefined;
      if (!connection) return undefined;
      connection.requests += 1;
      connection.headSince = undefined;
      open.started(connection);
      open.working(connection);
      return () => {
        connection.requests -= 1;
        if (connection.requests > 0) return;
        connection.idleSince = now();
        open.idle(connection);
      };
    },
    get size() {
      return open.size;
    },
    /**
     * Stops accepting, lets `drain` finish (the HTTP server answering what it
     * has in hand), then cuts what is left.
     */
    async stop(drain: () => Promise<void>): Promise<void> {
      clearInterval(ticker);
      front?.stop();
      await drain();
      for (const connection of open) close(connection);
    },
  };
}
