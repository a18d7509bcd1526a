import http2, { type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { TokenVerifier } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import {
  LocationIngestService,
  StreamPingsRequestSchema,
  StreamPingsResponseSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import { encodeGrpcFrame, GrpcFrameReader } from "./grpc-frames";
import { encodeAckResponse } from "./hot-path-encoders";
import { authenticateRider } from "./rider-auth";
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

/**
 * StreamPings over plain gRPC without the generic Connect adapter, which
 * costs 3-4x per message over HTTP/2 itself (docs/performance-notes.md). Same wire
 * protocol, same generated types, same per-stream logic (RiderStreams) as
 * the Connect handler; gRPC-Web and Connect clients still go through that.
 */
export function createGrpcStreamFastPath(deps: { verifier: TokenVerifier; streams: RiderStreams }) {
  return async function serveStreamPings(
    request: Http2ServerRequest,
    response: Http2ServerResponse,
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
      const headers = new Headers({ authorization: String(request.headers.authorization ?? "") });
      stream = await deps.streams.open(await authenticateRider(deps.verifier, headers));
    } catch (error) {
      return refuse(response, toConnectError(error));
    }
    response.writeHead(200, { "content-type": "application/grpc" });
    pumpRequests(request, stream);
    await writeResponses(response, stream);
  };
}

/** Reads ping frames in order, one handlePing at a time, pausing when far ahead. */
function pumpRequests(request: Http2ServerRequest, stream: RiderStream): void {
  const frames = new GrpcFrameReader(PING_MESSAGE_MAX_BYTES);
  let chain: Promise<void> = Promise.resolve();
  let inFlight = 0;
  let failed = false;
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    request.pause();
    stream.responses.fail(toConnectError(error));
  };
  request.on("data", (chunk: Buffer) => {
    if (failed) return;
    const messages = frames.push(chunk);
    if (messages === "compressed")
      return fail(new ConnectError("compressed messages are not accepted", Code.InvalidArgument));
    if (messages === "too_large")
      return fail(
        new ConnectError(
          `message larger than ${PING_MESSAGE_MAX_BYTES} bytes`,
          Code.ResourceExhausted,
        ),
      );
    for (const bytes of messages) {
      let ping: ReturnType<typeof fromBinary<typeof StreamPingsRequestSchema>>["ping"];
      try {
        ping = fromBinary(StreamPingsRequestSchema, bytes).ping;
      } catch (error) {
        return fail(
          new ConnectError(
            "malformed StreamPingsRequest",
            Code.InvalidArgument,
            undefined,
            undefined,
            error,
          ),
        );
      }
      if (!ping) return fail(new EdgeError("invalid_message", "StreamPingsRequest without a ping"));
      const valid = ping;
      inFlight += 1;
      if (inFlight >= MAX_PINGS_IN_FLIGHT) request.pause();
      chain = chain
        .then(() => stream.handlePing(valid))
        .then(() => {
          inFlight -= 1;
          if (inFlight < MAX_PINGS_IN_FLIGHT / 2 && !failed) request.resume();
        }, fail);
    }
  });
  request.on("end", () => {
    if (frames.hasPartialFrame())
      return fail(new ConnectError("stream ended inside a message", Code.InvalidArgument));
    void chain.then(() => stream.responses.end());
  });
  // The client went away: nothing more will be read or written.
  request.on("aborted", () => stream.responses.end());
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
