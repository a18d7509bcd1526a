import { createConnectRouter, createContextValues, type ServiceImpl } from "@connectrpc/connect";
import {
  type UniversalServerRequest,
  type UniversalServerResponse,
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import type { Logger } from "pino";
import { EdgeError } from "../../core/errors/edge-error";
import { errorResponse, requestIdOf } from "../../core/errors/error-response";
import { raiseParserHeaderLimit, requestHeadBytes } from "../../core/http/request-head";
import { settleWithin } from "../../core/lifecycle/settle-within";
import { stopServerWithin } from "../../core/lifecycle/stop-server-within";
import { clientAddress } from "../../core/limits/auth-failure-limit";
import { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { CALLS_CLOSE_GRACE_MS } from "../config";
import { type IngestMetrics, limitHitReporter } from "../metrics";
import { PARSER_HEADER_LIMIT_BYTES, type TransportLimits } from "../transport-config";
import { translateErrors } from "./connect-errors";
import type { RunningServer } from "./h2c-server";
import { createHttp1ConnectionGuard } from "./http1-connection-guard";
import { guardMessages, messageTimeoutError, stopReading } from "./message-guard";
import { type AdmittedCall, callAdmission, type RiderCalls } from "./rider-calls";
import { MESSAGE_MAX_BYTES, registerIngestRoutes, UPLOAD_MESSAGE_MAX_BYTES } from "./routes";
import type { SendPing } from "./send-ping";
import {
  createUnarySendPing,
  leanUnaryForm,
  oneChunk,
  type UnaryAnswer,
  type UnaryForm,
  unaryErrorAnswer,
} from "./unary-send-ping";

/** The largest body the port takes (an upload message and its framing); larger is 413. */
const MAX_BODY_BYTES = UPLOAD_MESSAGE_MAX_BYTES + 64 * 1024;
/**
 * Bun's own ceiling: past it Bun answers a bare 413 before the handler runs,
 * so the handler's JSON 413 covers declared lengths between the two.
 */
const BUN_MAX_BODY_BYTES = 2 * MAX_BODY_BYTES;
const SEND_PING = LocationIngestService.method.sendPing;

export interface Http1ServerDeps {
  service: ServiceImpl<typeof LocationIngestService>;
  sendPing: SendPing;
  riderCalls: RiderCalls;
  healthRoutes: (request: Request) => Promise<Response | undefined>;
  limits: TransportLimits;
  metrics: IngestMetrics;
  logger: Logger;
  bindHost: string;
  /** INGEST_CLIENT_ADDRESS_HEADER: its rightmost entry is the client's address (unset: the TCP peer). */
  clientAddressHeader?: string;
}

/**
 * HTTP/1.1 for clients without HTTP/2: Connect unary (JSON or binary), so
 * `POST /delivery.tracking.v1.LocationIngestService/SendPing` works with
 * curl, plus the health and metrics routes. Its own errors (unknown route,
 * headers or body too large, a crash) are the edge's JSON error shape with
 * `requestId`; RPC errors are the Connect protocol's, which Connect clients
 * read. Every answer carries `X-Request-Id`. Connections come in through
 * the port's connection guard (cap, head deadline, idle timeout), which
 * relays them to this server on a loopback port.
 */
export async function startHttp1Server(
  port: number,
  deps: Http1ServerDeps,
): Promise<RunningServer> {
  const { service, riderCalls, healthRoutes, limits, metrics, logger, clientAddressHeader } = deps;
  const reportLimit = limitHitReporter(metrics, logger);
  const router = createConnectRouter({
    grpc: false,
    grpcWeb: true,
    connect: true,
    interceptors: [translateErrors],
  });
  registerIngestRoutes(router, service);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const answerSendPing = createUnarySendPing(deps.sendPing);

  /**
   * A plain SendPing answered from its whole body as one byte answer; the
   * body, when it is connect-node's to answer (unary-send-ping.ts).
   */
  async function serveLean(
    form: UnaryForm,
    request: Request,
    call: AdmittedCall,
    requestId: string,
  ): Promise<Response | Uint8Array> {
    const body = await bodyWithin(request, limits.messageTimeoutMs);
    let answer: UnaryAnswer | undefined;
    if (body === "gone") {
      call.release();
      return clientGone();
    }
    if (body === "timeout") {
      reportLimit("message_timeout", { requestId, method: SEND_PING.name });
      answer = unaryErrorAnswer(form, messageTimeoutError(limits.messageTimeoutMs));
    } else {
      answer = await answerSendPing(form, body, call.admission);
      if (!answer) return body;
    }
    call.release();
    // Every answer body is on an ordinary ArrayBuffer (protobuf-es, TextEncoder, Buffer).
    return new Response(answer.body as Uint8Array<ArrayBuffer>, {
      status: answer.status,
      headers: { ...answer.headers, "x-request-id": requestId },
    });
  }

  /** `peerAddress`: the client's, as the front saw it (the server's own peer is the front). */
  async function serve(
    request: Request,
    requestId: string,
    peerAddress: string,
  ): Promise<Response> {
    if (requestHeadBytes(request) > limits.httpMaxHeaderBytes) {
      reportLimit("headers_too_large", { requestId });
      throw new EdgeError(
        "headers_too_large",
        `request line and headers larger than ${limits.httpMaxHeaderBytes} bytes`,
      );
    }
    const health = await healthRoutes(request);
    if (health) return health;
    const handler = handlers.get(new URL(request.url).pathname);
    if (!handler) throw new EdgeError("not_found", "no such route");
    if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) {
      reportLimit("body_too_large", {
        requestId,
        contentLength: request.headers.get("content-length"),
      });
      throw new EdgeError("payload_too_large", `bodies larger than ${MAX_BODY_BYTES} bytes`);
    }
    // Only unary calls work over HTTP/1.1 (no full duplex): each counts.
    const call = await riderCalls.admit(request.headers.get("authorization"), true, () =>
      clientAddress(
        clientAddressHeader ? request.headers.get(clientAddressHeader) : undefined,
        () => peerAddress,
      ),
    );
    const form =
      handler.method === SEND_PING
        ? leanUnaryForm(
            { method: request.method, header: (name) => request.headers.get(name) },
            "http1",
          )
        : undefined;
    let readBody: Uint8Array | undefined;
    if (form) {
      let lean: Response | Uint8Array;
      try {
        lean = await serveLean(form, request, call, requestId);
      } catch (error) {
        call.release();
        throw error;
      }
      if (lean instanceof Response) return lean;
      readBody = lean;
    }
    // A body already read is handed on as it is (the request's stream is spent).
    const universal: UniversalServerRequest = readBody
      ? { ...requestHead(request), body: oneChunk(readBody) }
      : universalServerRequestFromFetch(request, { httpVersion: "1.1" });
    const reading = new AbortController();
    universal.contextValues = createContextValues()
      .set(callAdmission, call.admission)
      .set(stopReading, () => reading.abort());
    universal.body = guardMessages(universal.body as AsyncIterable<Uint8Array>, {
      stop: reading.signal,
      method: handler.method,
      header: universal.header,
      maxBytes: MESSAGE_MAX_BYTES[handler.method.name] ?? 0,
      timeoutMs: limits.messageTimeoutMs,
      onLimit: (limit) => reportLimit(limit, { requestId, method: handler.method.name }),
    });
    let answer: UniversalServerResponse;
    try {
      answer = await handler(universal);
    } catch (error) {
      call.release();
      throw error;
    }
    // The rider's slot is held until the answer is written (a stream's last message).
    const response = universalServerResponseToFetch({
      ...answer,
      body: answer.body && releasedAfter(answer.body, call.release),
    });
    if (!answer.body) call.release();
    response.headers.set("x-request-id", requestId);
    return response;
  }

  // Requests up to the parser's limit reach the handler, which answers 431 in the error shape.
  raiseParserHeaderLimit(PARSER_HEADER_LIMIT_BYTES);
  const guard = createHttp1ConnectionGuard({ limits, metrics, logger });
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    // The guard's idle timeout decides; Bun's is a backstop. Before a connection's first
    // request Bun's own 10 s deadline (4 s ticks) applies instead, and it is all that
    // closes an idle local connection made straight to this port (nothing of one shows
    // here before a request; a request gets outsideTheFront's 403).
    idleTimeout: Math.min(255, limits.httpIdleTimeoutS + 5),
    maxRequestBodySize: BUN_MAX_BODY_BYTES,
    async fetch(request, bun) {
      const started = guard.requestStarted(bun.requestIP(request));
      const requestId = requestIdOf(request);
      if (!started) return outsideTheFront(requestId);
      try {
        return await serve(request, requestId, started.clientAddress);
      } catch (error) {
        const edgeError = EdgeError.from(error);
        // A fault of ours is an error line even when its client has also gone.
        if (edgeError.code === "internal" && !isClientAbort(error, request.signal)) {
          logger.error({ err: error, requestId }, "http request failed");
        }
        return errorResponse(edgeError, requestId);
      } finally {
        // The client left before its answer (mid-body, say): nobody reads one, and
        // anyone can do it, so a debug line, never an error.
        if (request.signal.aborted)
          logger.debug(
            { requestId, path: new URL(request.url).pathname },
            "http client gone before its answer",
          );
        started.answered();
      }
    },
  });
  const listening = await guard.listen(port, deps.bindHost, server.port as number);
  return {
    port: listening,
    close: async () => {
      await guard.stop(() => stopServerWithin(server, CALLS_CLOSE_GRACE_MS).then(() => undefined));
    },
  };
}

/**
 * A request on the server's loopback port that did not come through the
 * port's front (a local process going round its limits): refused, and the
 * connection closed.
 */
function outsideTheFront(requestId: string): Response {
  const response = errorResponse(
    new EdgeError("forbidden", "connect to the HTTP port, not the server behind it"),
    requestId,
  );
  response.headers.set("connection", "close");
  return response;
}

/**
 * Whether `error` is the client's leaving itself (the request's abort: its
 * reason, or an AbortError raised by it), which anyone can cause and is the
 * debug line, rather than a fault that happened as the client left.
 */
export function isClientAbort(error: unknown, signal: AbortSignal): boolean {
  if (!signal.aborted) return false;
  return error === signal.reason || (error instanceof Error && error.name === "AbortError");
}

/** The answer to a client that went away: never written, the connection is gone. */
function clientGone(): Response {
  return new Response(null, { status: 400, headers: { connection: "close" } });
}

/**
 * The request's whole body; "timeout" when it did not arrive within `ms`,
 * "gone" when the client went away before sending it all.
 */
async function bodyWithin(request: Request, ms: number): Promise<Uint8Array | "timeout" | "gone"> {
  const reading = request.bytes().catch(() => "gone" as const);
  return settleWithin(reading, ms, "timeout" as const);
}

function requestHead(request: Request): Omit<UniversalServerRequest, "body"> {
  const { method, url, headers: header, signal } = request;
  return { httpVersion: "1.1", method, url, header, signal };
}

async function* releasedAfter<T>(body: AsyncIterable<T>, release: () => void): AsyncGenerator<T> {
  try {
    yield* body;
  } finally {
    release();
  }
}
