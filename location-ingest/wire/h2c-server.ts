import http2, { type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextValues,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { KeyRevocations } from "../../core/auth/token-lifetime";
import { clientAddress } from "../../core/limits/auth-failure-limit";
import { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { CALLS_CLOSE_GRACE_MS } from "../config";
import { type IngestMetrics, limitHitReporter } from "../metrics";
import type { RiderSessions } from "../session/rider-sessions";
import type { TransportLimits } from "../transport-config";
import { translateErrors } from "./connect-errors";
import { createConnectionGuard } from "./connection-guard";
import { createGrpcStreamPath, isGrpcStreamPings } from "./grpc-stream-path";
import { createH2cUnaryPath } from "./h2c-unary-path";
import { guardMessages, stopReading } from "./message-guard";
import { type CallAdmission, callAdmission, type RiderCalls } from "./rider-calls";
import { MESSAGE_MAX_BYTES, registerIngestRoutes } from "./routes";
import type { SendPing } from "./send-ping";

const STREAM_PINGS_METHOD = `/${LocationIngestService.method.streamPings.name}`;

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface H2cServerDeps {
  service: ServiceImpl<typeof LocationIngestService>;
  sendPing: SendPing;
  sessions: RiderSessions;
  /** The token verifier's: a StreamPings call ends when its token's signing key is revoked. */
  revocations: KeyRevocations;
  riderCalls: RiderCalls;
  limits: TransportLimits;
  metrics: IngestMetrics;
  logger: Logger;
  bindHost: string;
  /** INGEST_CLIENT_ADDRESS_HEADER: its rightmost entry is the client's address (unset: the TCP peer). */
  clientAddressHeader?: string;
}

/**
 * gRPC, gRPC-Web and Connect over HTTP/2 cleartext (h2c): what rider apps
 * hold their StreamPings open on. Every stream is admitted once (token,
 * rider cap) before the lean StreamPings path or connect-node serves it,
 * and every connection is under the connection guard's limits.
 */
export async function startH2cServer(port: number, deps: H2cServerDeps): Promise<RunningServer> {
  const { service, riderCalls, limits, metrics, logger } = deps;
  const router = createConnectRouter({
    grpc: true,
    grpcWeb: true,
    connect: true,
    acceptCompression: [compressionGzip, compressionBrotli],
    interceptors: [translateErrors],
  });
  registerIngestRoutes(router, service);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const reportLimit = limitHitReporter(metrics, logger);
  const serveStreamPings = createGrpcStreamPath({
    sessions: deps.sessions,
    revocations: deps.revocations,
    reportLimit,
    messageTimeoutMs: limits.messageTimeoutMs,
  });
  const serveUnary = createH2cUnaryPath({
    sendPing: deps.sendPing,
    reportLimit,
    messageTimeoutMs: limits.messageTimeoutMs,
  });
  const connections = createConnectionGuard({ limits, metrics, logger });

  function clientAddressOf(request: Http2ServerRequest): string {
    const { clientAddressHeader } = deps;
    // Repeated header lines: the last one's rightmost entry is the balancer's.
    const value = clientAddressHeader ? request.headers[clientAddressHeader] : undefined;
    return clientAddress(
      Array.isArray(value) ? value.join(",") : value,
      () => request.socket?.remoteAddress,
    );
  }

  async function serveCall(request: Http2ServerRequest, response: Http2ServerResponse) {
    const { stream } = request;
    const connection = connections.of(stream.session);
    connection?.streamOpened();
    // Listening before the token check: a stream may be reset while it runs.
    let closed = false;
    let riderCall = false;
    let riderId: string | undefined;
    let release: () => void = () => undefined;
    stream.once("close", () => {
      closed = true;
      release();
      connection?.streamClosed(riderCall);
      // Reset, or its connection gone, before the answer ended: what was acked is
      // written, the rest is the client's to send again. Anyone can do it: debug.
      if (stream.aborted || !response.writableEnded)
        logger.debug(
          { path: request.url, riderId, rstCode: stream.rstCode },
          "h2c call cut before its answer",
        );
    });
    const lean = isGrpcStreamPings(request);
    // A rider's StreamPings are one at a time anyway (a new one ends the old): not counted.
    const counted = !request.url?.endsWith(STREAM_PINGS_METHOD);
    const call = await riderCalls.admit(request.headers.authorization, counted, () =>
      clientAddressOf(request),
    );
    if (closed) return call.release();
    release = call.release;
    if (call.admission.rider) {
      riderId = call.admission.rider.riderId;
      riderCall = true;
      connection?.riderCallOpened();
    }
    const onBytes = () => connection?.touch();
    if (lean) return serveStreamPings(request, response, call.admission, onBytes);
    const handler = handlers.get(request.url?.split("?", 1)[0] ?? "");
    if (!handler) {
      response.writeHead(404);
      response.end();
      return;
    }
    const unary = serveUnary(request, response, call.admission, onBytes, (body) =>
      serveConnect(handler, request, response, call.admission, onBytes, body),
    );
    if (unary) return unary;
    await serveConnect(handler, request, response, call.admission, onBytes);
  }

  async function serveConnect(
    handler: UniversalHandler,
    request: Http2ServerRequest,
    response: Http2ServerResponse,
    admission: CallAdmission,
    onBytes: () => void,
    /** The body when the lean unary path has read it (or its start) already. */
    readBody?: AsyncIterable<Uint8Array>,
  ) {
    const reading = new AbortController();
    const universal = universalRequestFromNodeRequest(
      request,
      response,
      undefined,
      createContextValues()
        .set(callAdmission, admission)
        .set(stopReading, () => reading.abort()),
    );
    universal.body = guardMessages(readBody ?? (universal.body as AsyncIterable<Uint8Array>), {
      stop: reading.signal,
      method: handler.method,
      header: universal.header,
      maxBytes: MESSAGE_MAX_BYTES[handler.method.name] ?? 0,
      timeoutMs: limits.messageTimeoutMs,
      onBytes,
      onLimit: (limit) => reportLimit(limit, { method: handler.method.name }),
    });
    // A client still sending after the answer gets RST_STREAM(NO_ERROR), so
    // the stream does not stay half-open and hold its connection
    // (connect-node itself waits for the request side to end).
    const { stream } = request;
    stream.once("finish", () => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
    try {
      await universalResponseToNodeResponse(await handler(universal), response);
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Aborted) {
        logger.warn({ err: error, method: handler.method.name }, "connect call failed");
      }
    }
  }

  const server = http2.createServer(
    { settings: { maxConcurrentStreams: limits.maxStreamsPerConnection } },
    (request, response) => {
      serveCall(request, response).catch((error: unknown) => {
        logger.error({ err: error }, "h2c call failed");
        request.stream.destroy();
      });
    },
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    connections.add(session);
  });
  server.on("connection", connections.attach);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, deps.bindHost, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        connections.stop();
        server.close(() => resolve());
        // Streams were already told to reconnect: close sessions gracefully,
        // and cut those a client keeps open past the grace period.
        for (const session of sessions) session.close();
        setTimeout(() => {
          for (const session of sessions) session.destroy();
        }, CALLS_CLOSE_GRACE_MS).unref();
      }),
  };
}
