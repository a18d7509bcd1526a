import { type AddressInfo, createServer, connect as openSocket, type Socket } from "node:net";
import type { Logger } from "pino";
import type { TransportLimits } from "../config";
import { type IngestMetrics, limitHitReporter, type TransportLimit } from "../metrics";
import { createConnectionCap } from "./connection-cap";

interface Http1Connection {
  readonly peer: string;
  readonly client: Socket;
  /** The front's own connection to the HTTP server. */
  readonly server: Socket;
  /** Requests the HTTP server is answering on it. */
  requests: number;
  /** When the first byte of a request head not yet handed to the server arrived. */
  headSince: number | undefined;
  /** When its last request was answered (or it opened). */
  idleSince: number;
  /** When the server closed its side: the answer is flushed, then the client is cut. */
  closingSince: number | undefined;
  readonly openedAt: number;
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
 * is a TCP front in the same process: it accepts, counts and times each
 * connection and pipes it to the HTTP server on a loopback port. The server
 * marks a connection working while it answers (`requestStarted`), matched
 * by the front's outbound port. A connection costs three descriptors.
 */
export function createHttp1ConnectionGuard(deps: {
  limits: TransportLimits;
  metrics: IngestMetrics;
  logger: Logger;
  now?: () => number;
}) {
  const { limits, metrics, logger, now = Date.now } = deps;
  const count = limitHitReporter(metrics, logger);
  const byServerPort = new Map<number, Http1Connection>();
  let stopFront: () => Promise<void> = async () => undefined;
  const open = createConnectionCap<Http1Connection>({
    max: limits.httpMaxConnections,
    port: "HTTP/1.1",
    logger,
    now,
    evict: (victim) => cut(victim, "http_connection_evicted"),
  });

  function close(connection: Http1Connection): void {
    connection.client.destroy();
    connection.server.destroy();
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

  function accept(client: Socket, serverPort: number): void {
    const peer = `${client.remoteAddress}:${client.remotePort}`;
    if (!open.admit()) {
      count("http_connection_refused", { peer });
      client.destroy();
      return;
    }
    const server = openSocket({ host: "127.0.0.1", port: serverPort });
    const connection: Http1Connection = {
      peer,
      client,
      server,
      requests: 0,
      headSince: undefined,
      idleSince: now(),
      closingSince: undefined,
      openedAt: now(),
    };
    open.add(connection);
    metrics.httpConnections.set(open.size);
    logger.debug({ peer }, "http connection opened");
    server.once("connect", () => {
      const port = server.localPort;
      if (port === undefined) return;
      byServerPort.set(port, connection);
      server.once("close", () => byServerPort.delete(port));
    });
    client.on("data", () => {
      // Bytes while no request is being answered start a request head.
      if (connection.requests === 0) connection.headSince ??= now();
    });
    client.pipe(server);
    server.pipe(client);
    // Either side gone ends both; an answer already queued is flushed by the pipe's end().
    client.once("close", () => close(connection));
    server.once("close", (hadError) => {
      if (hadError) close(connection);
      else connection.closingSince = now();
    });
    client.on("error", () => close(connection));
    server.on("error", () => close(connection));
  }

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
    /** Listens on the public port, piping each connection to the HTTP server on `serverPort`. */
    async listen(port: number, host: string, serverPort: number): Promise<number> {
      const front = createServer((client) => accept(client, serverPort));
      await new Promise<void>((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => resolve());
      });
      stopFront = () => new Promise<void>((resolve) => front.close(() => resolve()));
      return (front.address() as AddressInfo).port;
    },
    /**
     * The HTTP server started answering a request that came through the
     * front's connection from `serverSidePort`; call the result once answered.
     */
    requestStarted(serverSidePort: number | undefined): () => void {
      const connection =
        serverSidePort === undefined ? undefined : byServerPort.get(serverSidePort);
      if (!connection) return () => undefined;
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
      const closed = stopFront();
      await drain();
      for (const connection of open) close(connection);
      await closed;
    },
  };
}
