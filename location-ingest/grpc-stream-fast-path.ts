import http2, { type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { EdgeError } from "../core/errors/edge-error";
import {
  LocationIngestService,
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { encodeGrpcFrame, GrpcFrameReader } from "./grpc-frames";
import { encodeAckResponse } from "./hot-path-encoders";
import type { IngestMetrics } from "./metrics";
import type { CallAdmission } from "./rider-calls";
import type { RiderStream, RiderStreams } from "./rider-streams";
import { PING_MESSAGE_MAX_BYTES } from "./routes";
import { toConnectError } from "./to-connect-error";

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

export interface FastPathDeps {
  streams: RiderStreams;
  metrics: IngestMetrics;
  /** A started ping frame must be complete within this, else the stream ends DeadlineExceeded. */
  messageTimeoutMs: number;
}

/**
 * StreamPings over plain gRPC without the generic Connect adapter, which
 * costs 3-4x per message over HTTP/2 itself (docs/performance-notes.md). Same wire
 * protocol, same generated types, same per-stream logic (RiderStreams) as
 * the Connect handler; gRPC-Web and Connect clients still go through that.
 * The transport has admitted the call (token, rider cap) before.
 */
export function createGrpcStreamFastPath(deps: FastPathDeps) {
  return async function serveStreamPings(
    request: Http2ServerRequest,
    response: Http2ServerResponse,
    admission: CallAdmission,
    onBytes: () => void,
  ) {
    const encoding = request.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      return refuse(
        response,
        new ConnectError(`grpc-encoding ${encoding} not supported`, Code.Unimplemented),
      );
    }
    let stream: RiderStream;
    try {
      if (deps.streams.isDraining()) throw new EdgeError("draining", "server is draining");
      if (admission.refusal) throw admission.refusal;
      stream = await deps.streams.open(admission.rider);
    } catch (error) {
      return refuse(response, toConnectError(error));
    }
    // Reset while the stream was opening: nothing will end it otherwise.
    if (request.stream.closed) return stream.close();
    response.writeHead(200, { "content-type": "application/grpc" });
    pumpRequests(request, stream, deps, onBytes);
    await writeResponses(response, stream);
  };
}

/**
 * Reads ping frames in order, one handlePing at a time, pausing when far
 * ahead. A frame left unfinished for `messageTimeoutMs` while we are
 * reading ends the stream (a paused read restarts the clock on resume:
 * the wait was ours, not the client's).
 */
function pumpRequests(
  request: Http2ServerRequest,
  stream: RiderStream,
  deps: FastPathDeps,
  onBytes: () => void,
): void {
  const { metrics, messageTimeoutMs } = deps;
  const frames = new GrpcFrameReader(PING_MESSAGE_MAX_BYTES);
  let chain: Promise<void> = Promise.resolve();
  let inFlight = 0;
  let paused = false;
  let failed = false;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const clearDeadline = () => {
    if (deadline === undefined) return;
    clearTimeout(deadline);
    deadline = undefined;
  };
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    clearDeadline();
    request.pause();
    stream.responses.fail(toConnectError(error));
  };
  const refuseMessage = (limit: "malformed_message" | "message_too_large", error: EdgeError) => {
    metrics.limitHits.inc({ limit });
    fail(error);
  };
  const watchPartialFrame = () => {
    if (!frames.hasPartialFrame() || paused) return clearDeadline();
    deadline ??= setTimeout(() => {
      metrics.limitHits.inc({ limit: "message_timeout" });
      fail(new EdgeError("message_timeout", `a ping did not arrive within ${messageTimeoutMs} ms`));
    }, messageTimeoutMs);
  };
  request.on("data", (chunk: Buffer) => {
    if (failed) return;
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
      const valid = ping;
      inFlight += 1;
      if (inFlight >= MAX_PINGS_IN_FLIGHT && !paused) {
        paused = true;
        request.pause();
      }
      chain = chain
        .then(() => stream.handlePing(valid))
        .then(() => {
          inFlight -= 1;
          if (paused && inFlight < MAX_PINGS_IN_FLIGHT / 2 && !failed) {
            paused = false;
            request.resume();
            watchPartialFrame();
          }
        }, fail);
    }
    watchPartialFrame();
  });
  request.on("end", () => {
    clearDeadline();
    if (frames.hasPartialFrame())
      return fail(new EdgeError("invalid_message", "stream ended inside a message"));
    void chain.then(() => stream.responses.end());
  });
  // The client went away: nothing more will be read or written.
  request.on("aborted", () => {
    clearDeadline();
    stream.responses.end();
  });
}

/** Writes acks, offers and the drain notice as gRPC frames, then the status trailers. */
async function writeResponses(response: Http2ServerResponse, stream: RiderStream): Promise<void> {
  let status: ConnectError | undefined;
  try {
    for await (const message of stream.responses) {
      if (response.stream.destroyed) break;
      const bytes =
        message.event.case === "ack"
          ? encodeAckResponse(message.event.value)
          : toBinary(StreamPingsResponseSchema, message);
      response.write(encodeGrpcFrame(bytes));
    }
  } catch (error) {
    status = toConnectError(error);
  } finally {
    stream.close();
  }
  if (response.stream.destroyed || response.stream.closed) return;
  response.addTrailers(statusTrailers(status));
  endCall(response);
}

function statusTrailers(error: ConnectError | undefined): Record<string, string> {
  if (!error) return { "grpc-status": "0" };
  return {
    "grpc-status": String(error.code),
    "grpc-message": encodeURIComponent(error.rawMessage),
  };
}

/**
 * A call refused before any message. Headers then trailers, rather than a
 * trailers-only response: every gRPC client reads that form the same way.
 */
function refuse(response: Http2ServerResponse, error: ConnectError): void {
  if (response.stream.destroyed) return;
  response.writeHead(200, { "content-type": "application/grpc" });
  response.addTrailers(statusTrailers(error));
  endCall(response);
}

/**
 * Ends the response; a client still sending (it has not half-closed) gets
 * RST_STREAM(NO_ERROR) after the trailers, as gRPC servers do, so the
 * stream does not linger half-open and a drain can close the session.
 */
function endCall(response: Http2ServerResponse): void {
  response.end(() => {
    if (!response.stream.closed) response.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}
