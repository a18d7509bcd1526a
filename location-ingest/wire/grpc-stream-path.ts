import http2, { type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { KeyRevocations } from "../../core/auth/token-lifetime";
import { EdgeError } from "../../core/errors/edge-error";
import type { GeoPing } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  LocationIngestService,
  StreamPingsRequestSchema,
  type StreamPingsResponse,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { LimitHit } from "../metrics";
import type { RiderSessions } from "../session/rider-sessions";
import { toConnectError } from "./connect-errors";
import { encodeGrpcFrame, GrpcFrameReader } from "./grpc-frames";
import type { ResponseSink } from "./response-queue";
import type { CallAdmission } from "./rider-calls";
import { PING_MESSAGE_MAX_BYTES } from "./routes";
import { openStreamPings, type StreamPingsCall } from "./stream-pings";

const STREAM_PINGS_PATH = `/${LocationIngestService.typeName}/${LocationIngestService.method.streamPings.name}`;
/** Pings read ahead of their acks before the request side is paused (HTTP/2 flow control does the rest). */
const MAX_PINGS_IN_FLIGHT = 32;

/** True for a plain-gRPC StreamPings call, which the lean path serves. */
export function isGrpcStreamPings(request: Http2ServerRequest): boolean {
  const type = request.headers["content-type"];
  return (
    request.method === "POST" &&
    request.url === STREAM_PINGS_PATH &&
    (type === "application/grpc" || type === "application/grpc+proto")
  );
}

export interface GrpcStreamPathDeps {
  sessions: RiderSessions;
  revocations: KeyRevocations;
  /** Counts and logs a message limit hit on a stream. */
  reportLimit: LimitHit;
  /** A started ping frame must be complete within this, else the stream ends DeadlineExceeded. */
  messageTimeoutMs: number;
}

/**
 * StreamPings over plain gRPC without connect-node's generic adapter: the
 * same wire protocol, generated types and session (stream-pings.ts), at a
 * fraction of the adapter's cost per message (bench/RESULTS.md, "Ingest":
 * CPU per ping on this path against connect-node's in the same run).
 * gRPC-Web and Connect clients go through connect-node. The transport has
 * admitted the call (token) before. Every error of the call, whatever
 * raised it, ends in one place: the status trailers (statusTrailers).
 */
export function createGrpcStreamPath(deps: GrpcStreamPathDeps) {
  return function serveStreamPings(
    request: Http2ServerRequest,
    response: Http2ServerResponse,
    admission: CallAdmission,
    onBytes: () => void,
  ): void {
    let call: StreamPingsCall | undefined;
    let stopReading: (() => void) | undefined;
    // Every end of the call comes here once, whoever ends it: the pump, the
    // client, the session (supersede, drain) or the token's end (exp, key revoked).
    const responses = grpcResponses(response, () => {
      stopReading?.();
      call?.close();
    });
    try {
      const encoding = request.headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity")
        throw new ConnectError(`grpc-encoding ${encoding} not supported`, Code.Unimplemented);
      if (!admission.rider) throw admission.refusal;
      // Reset while the call was admitted: nothing will end it otherwise.
      if (request.stream.closed) return;
      call = openStreamPings(deps.sessions, admission.rider, responses, deps.revocations);
    } catch (error) {
      responses.fail(error);
      return;
    }
    stopReading = pumpRequests(request, call, responses, deps, onBytes, admission.rider.riderId);
  };
}

/**
 * Reads ping frames in order, one accept at a time, pausing when far
 * ahead. A frame left unfinished for `messageTimeoutMs` while we are
 * reading ends the stream (a paused read restarts the clock on resume:
 * the wait was ours, not the client's). Returns the stop the call's end
 * runs, however it ended: the clock cleared, the request no longer read.
 * It reads the HTTP/2 stream itself, not the compatibility request around
 * it: node:http2's Http2ServerRequest is a second Readable that every DATA
 * chunk is pushed through again (bench/RESULTS.md, "Ingest — analysis",
 * the stream path's glue).
 */
function pumpRequests(
  request: Http2ServerRequest,
  call: StreamPingsCall,
  responses: ResponseSink<StreamPingsResponse>,
  deps: GrpcStreamPathDeps,
  onBytes: () => void,
  riderId: string,
): () => void {
  const { reportLimit, messageTimeoutMs } = deps;
  const { stream } = request;
  const frames = new GrpcFrameReader(PING_MESSAGE_MAX_BYTES);
  // Pings read and not yet acked, oldest first; the first is with the session.
  const waiting: GeoPing[] = [];
  let requestEnded = false;
  let paused = false;
  let over = false;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const clearDeadline = () => {
    if (deadline === undefined) return;
    clearTimeout(deadline);
    deadline = undefined;
  };
  // The call's end (grpcResponses' onEnd) runs stop.
  const fail = (error: unknown) => responses.fail(error);
  const refuseMessage = (limit: "malformed_message" | "message_too_large", error: EdgeError) => {
    reportLimit(limit, { riderId });
    fail(error);
  };
  const watchPartialFrame = () => {
    if (!frames.hasPartialFrame() || paused) return clearDeadline();
    deadline ??= setTimeout(() => {
      reportLimit("message_timeout", { riderId });
      fail(new EdgeError("message_timeout", `a ping did not arrive within ${messageTimeoutMs} ms`));
    }, messageTimeoutMs);
  };
  // One ping at a time, in request order, without a promise chain per ping.
  const acceptNext = (): void => {
    const ping = waiting[0];
    if (ping === undefined) {
      if (requestEnded) responses.end();
      return;
    }
    call.accept(ping).then(accepted, fail);
  };
  const accepted = () => {
    waiting.shift();
    if (paused && waiting.length < MAX_PINGS_IN_FLIGHT / 2 && !over) {
      paused = false;
      stream.resume();
      watchPartialFrame();
    }
    if (!over) acceptNext();
  };
  stream.on("data", (chunk: Buffer) => {
    if (over) return;
    onBytes();
    const completed = frames.push(chunk);
    if (completed === "too_large") {
      return refuseMessage(
        "message_too_large",
        new EdgeError("payload_too_large", `message larger than ${PING_MESSAGE_MAX_BYTES} bytes`),
      );
    }
    // A chunk that finished a frame started the one it leaves unfinished.
    if (completed.length > 0) clearDeadline();
    for (const frame of completed) {
      if (frame.compressed) {
        return refuseMessage(
          "malformed_message",
          new EdgeError("invalid_message", "compressed messages are not accepted"),
        );
      }
      let ping: ReturnType<typeof fromBinary<typeof StreamPingsRequestSchema>>["ping"];
      try {
        ping = fromBinary(StreamPingsRequestSchema, frame.message).ping;
      } catch (error) {
        return refuseMessage(
          "malformed_message",
          new EdgeError("invalid_message", "malformed StreamPingsRequest", { cause: error }),
        );
      }
      if (!ping) return fail(new EdgeError("invalid_message", "StreamPingsRequest without a ping"));
      waiting.push(ping);
      if (waiting.length === 1) acceptNext();
      if (waiting.length >= MAX_PINGS_IN_FLIGHT && !paused) {
        paused = true;
        stream.pause();
      }
    }
    watchPartialFrame();
  });
  stream.on("end", () => {
    clearDeadline();
    if (frames.hasPartialFrame())
      return fail(new EdgeError("invalid_message", "stream ended inside a message"));
    requestEnded = true;
    if (waiting.length === 0) responses.end();
  });
  // The client went away: nothing more will be read or written.
  stream.on("aborted", () => responses.end());
  return () => {
    over = true;
    clearDeadline();
    stream.pause();
  };
}

/**
 * The call's responses written as they come: each message as a gRPC frame,
 * then the status trailers, the one place the call's errors become codes
 * (statusTrailers). `onEnd` runs once, when the call is over either way.
 */
function grpcResponses(
  response: Http2ServerResponse,
  onEnd: () => void,
): ResponseSink<StreamPingsResponse> {
  let started = false;
  let ended = false;
  const gone = () => response.stream.destroyed || response.stream.closed;
  const start = () => {
    if (started) return;
    started = true;
    response.writeHead(200, { "content-type": "application/grpc" });
  };
  const finish = (failure: unknown) => {
    if (ended) return;
    ended = true;
    onEnd();
    if (gone()) return;
    // A call refused before any message: headers then trailers, rather than a
    // trailers-only response: every gRPC client reads that form the same way.
    start();
    response.addTrailers(statusTrailers(failure));
    endCall(response);
  };
  return {
    push(message) {
      if (ended || gone()) return;
      start();
      response.write(encodeGrpcFrame(toBinary(StreamPingsResponseSchema, message)));
    },
    end: () => finish(undefined),
    fail: (error) => finish(error ?? new Error("stream failed")),
  };
}

/** The call's status as gRPC trailers: the one place its errors become codes. */
export function statusTrailers(failure: unknown): Record<string, string> {
  if (failure === undefined) return { "grpc-status": "0" };
  const error = toConnectError(failure);
  // Its metadata (retry-after) as trailers too, as connect-node sends them.
  const trailers: Record<string, string> = {};
  error.metadata.forEach((value, name) => {
    trailers[name] = value;
  });
  trailers["grpc-status"] = String(error.code);
  trailers["grpc-message"] = encodeURIComponent(error.rawMessage);
  return trailers;
}

/**
 * Ends the response; a client still sending (it has not half-closed) gets
 * RST_STREAM(NO_ERROR) after the trailers, as gRPC servers do, so the
 * stream does not linger half-open and a drain can close the session.
 */
export function endCall(response: Http2ServerResponse): void {
  response.end(() => {
    if (!response.stream.closed) response.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}
