import type { Socket, TCPSocketListener } from "bun";
import type { Logger } from "pino";
import { type IngestMetrics, limitHitReporter, type TransportLimit } from "../metrics";
import type { TransportLimits } from "../transport-config";
import { createConnectionCap } from "./connection-cap";
import { createCapRefusals } from "./http1-cap-refusal";
import { endAfterPending, flush, forward, type RelaySide, relaySide } from "./http1-front-relay";

/** One side of a connection through the front: the client's socket, or the front's to the server. */
type Side = RelaySide<Http1Connection>;

interface Http1Connection {
  /** The client's "address:port", for the debug lines. */
  readonly peer: string;
  /** The client's address: what the HTTP server, whose peer is the front, cannot see. */
  readonly clientAddress: string;
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
  /** Its connection to the server was asked for (at the client's first byte): open, on its way or gone. */
  serverDialed: boolean;
  closed: boolean;
}

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
 * server): it accepts, counts and times each connection and relays its
 * bytes both ways to the HTTP server on a loopback port
 * (http1-front-relay.ts). The server marks a connection working while it
 * answers (`requestStarted`), matched by the front's outbound address and
 * port; a request that did not come through the front (a local process on
 * the loopback port) is not the port's and is refused.
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
  let front: TCPSocketListener<Http1Connection> | undefined;
  /** The HTTP server's loopback port (listen). */
  let serverPort = 0;
  const refusals = createCapRefusals();
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

  /** Relays `chunk` between `connection`'s sides; cuts a connection whose backlog runs away. */
  function relay(connection: Http1Connection, chunk: Buffer, from: Side, to: Side): void {
    if (forward(chunk, from, to)) return;
    // Counted like every limit, and a warning too: a paused socket that kept reading is a relay gone wrong.
    logger.warn({ peer: connection.peer }, "http connection cut: relay backlog too large");
    cut(connection, "http_relay_backlog");
  }

  function accept(client: Socket<Http1Connection>): void {
    const peer = `${client.remoteAddress}:${client.remotePort}`;
    if (!open.admit()) {
      count("http_connection_refused", { peer });
      refusals.refuse(client);
      return;
    }
    const connection: Http1Connection = {
      peer,
      clientAddress: client.remoteAddress,
      client: relaySide(client),
      server: relaySide(undefined),
      requests: 0,
      headSince: undefined,
      idleSince: now(),
      closingSince: undefined,
      openedAt: now(),
      serverDialed: false,
      closed: false,
    };
    client.data = connection;
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
    connection.serverDialed = true;
    let serverSide: string | undefined;
    Bun.connect<Http1Connection>({
      hostname: "127.0.0.1",
      port: serverPort,
      data: connection,
      socket: {
        open(server) {
          if (connection.closed) return server.terminate();
          connection.server.socket = server;
          serverSide = `${server.localAddress}:${server.localPort}`;
          byServerSide.set(serverSide, connection);
          flush(connection.server, connection.client);
        },
        data: (_server, chunk) => relay(connection, chunk, connection.server, connection.client),
        drain: () => flush(connection.server, connection.client),
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

  // A refused client has no connection in its data.
  const clientHandlers = {
    data(client: Socket<Http1Connection | undefined>, chunk: Buffer) {
      const connection = client.data;
      if (!connection) return refusals.drop(client, chunk);
      // Bytes while no request is being answered start a request head.
      if (connection.requests === 0) connection.headSince ??= now();
      if (!connection.serverDialed) connectServer(connection);
      relay(connection, chunk, connection.client, connection.server);
    },
    drain: (client: Socket<Http1Connection | undefined>) =>
      client.data && flush(client.data.client, client.data.server),
    // A refused client that is done sending has had its answer and FIN: closed gracefully.
    end(client: Socket<Http1Connection | undefined>) {
      if (client.data) endAfterPending(client.data.server);
      else refusals.ended(client);
    },
    close(client: Socket<Http1Connection | undefined>) {
      if (client.data) close(client.data);
      else refusals.closed(client);
    },
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
    /** Listens on the public port, relaying each connection to the HTTP server on `httpServerPort`. */
    async listen(port: number, host: string, httpServerPort: number): Promise<number> {
      serverPort = httpServerPort;
      front = Bun.listen<Http1Connection>({
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
     * requestIP): the address of the client the front relays it for (the
     * server's own peer is the front, on loopback), and `answered`, to call
     * once it is answered. Undefined for a request that did not come
     * through the front: matched by address and port, as a local process
     * can bind any of 127.0.0.0/8 with a live connection's port and reach
     * the server on 127.0.0.1.
     */
    requestStarted(
      peer: { address: string; port: number } | null,
    ): { clientAddress: string; answered: () => void } | undefined {
      const connection = peer ? byServerSide.get(`${peer.address}:${peer.port}`) : undefined;
      if (!connection) return undefined;
      connection.requests += 1;
      connection.headSince = undefined;
      open.started(connection);
      open.working(connection);
      return {
        clientAddress: connection.clientAddress,
        answered() {
          connection.requests -= 1;
          if (connection.requests > 0) return;
          connection.idleSince = now();
          open.idle(connection);
        },
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
      refusals.cutAll();
      await drain();
      for (const connection of open) close(connection);
    },
  };
}
