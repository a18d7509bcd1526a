import { fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  contentTypeUnaryProto,
  errorToJsonBytes,
  parseTimeout as parseConnectTimeout,
  parseContentType,
} from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import {
  SendPingRequestSchema,
  SendPingResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { toConnectError } from "./connect-errors";
import { encodeGrpcFrame, GrpcFrameReader } from "./grpc-frames";
import { statusTrailers } from "./grpc-stream-path";
import type { CallAdmission } from "./rider-calls";
import { PING_MESSAGE_MAX_BYTES } from "./routes";
import type { SendPing } from "./send-ping";

/** The unary SendPing forms the lean path answers; everything else is connect-node's. */
export type UnaryForm = "connect-json" | "connect-proto" | "grpc";

/** A unary call's request head, as either server reads it. */
export interface UnaryHead {
  readonly method: string | undefined;
  header(name: string): string | null | undefined;
}

/** The answer as bytes, written by the server that read the call. */
export interface UnaryAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  /** gRPC only: the status trailers. */
  readonly trailers?: Record<string, string>;
}

/** Upper bound on the body the lean path reads whole: one ping message and its gRPC framing. */
export const UNARY_BODY_MAX_BYTES = PING_MESSAGE_MAX_BYTES + 5;

/**
 * The lean form a SendPing call takes on a port, if any: POST,
 * uncompressed, no transfer coding, a declared length within one ping
 * message (required on HTTP/1.1, where the server reads the body whole
 * before the lean path sees it: a chunked body stays with connect-node's
 * message guard, which cuts it at the limit as it streams; h2c's reader
 * stops at the limit itself), a well-formed timeout header (or none), and a Connect unary
 * JSON / proto or (h2c) gRPC proto content type. Anything else (gRPC-Web,
 * compression, GET, a header connect-node would refuse) goes to
 * connect-node, whose answers the lean path matches.
 */
export function leanUnaryForm(head: UnaryHead, port: "h2c" | "http1"): UnaryForm | undefined {
  if (head.method !== "POST") return undefined;
  // A length beside a transfer coding is not the body's length (Bun answers 400 to both today).
  if (head.header("transfer-encoding") != null) return undefined;
  const length = head.header("content-length");
  if (length == null ? port === "http1" : !(Number(length) <= UNARY_BODY_MAX_BYTES))
    return undefined;
  const grpc = port === "h2c";
  const type = head.header("content-type") ?? null;
  if (grpc && (type === "application/grpc" || type === "application/grpc+proto")) {
    const encoding = head.header("grpc-encoding");
    if (encoding != null && encoding !== "identity") return undefined;
    const timeout = head.header("grpc-timeout") ?? null;
    if (timeout !== null && parseGrpcTimeout(timeout, Number.MAX_SAFE_INTEGER).error)
      return undefined;
    return "grpc";
  }
  const encoding = head.header("content-encoding");
  if (encoding != null && encoding !== "identity") return undefined;
  const timeout = head.header("connect-timeout-ms") ?? null;
  if (timeout !== null && parseConnectTimeout(timeout, Number.MAX_SAFE_INTEGER).error)
    return undefined;
  const parsed = parseContentType(type);
  if (parsed === undefined || parsed.stream) return undefined;
  return parsed.binary ? "connect-proto" : "connect-json";
}

/**
 * Answers a unary SendPing from its whole body, without connect-node's
 * universal handler (its request and response iterables, abort signal and
 * streamed body cost more than the ping: bench/RESULTS.md, "Ingest —
 * transport attacks"). The same messages and codes as connect-node: a
 * body the fast parse refuses (malformed, several or no gRPC messages, a
 * compressed frame, past the message limit) returns undefined, and the
 * caller hands the same bytes to connect-node, which answers and counts
 * it as before. Every error of the call itself ends in one catch
 * (toConnectError), as the router's interceptor does.
 */
export function createUnarySendPing(sendPing: SendPing) {
  return async function answer(
    form: UnaryForm,
    body: Uint8Array,
    admission: CallAdmission,
  ): Promise<UnaryAnswer | undefined> {
    const request = parseRequest(form, body);
    if (request === undefined) return undefined;
    const grpc = form === "grpc";
    try {
      const response = await sendPing(request, admission);
      if (grpc) {
        const message = encodeGrpcFrame(toBinary(SendPingResponseSchema, response));
        return grpcAnswer(message, statusTrailers(undefined));
      }
      const binary = form === "connect-proto";
      return {
        status: 200,
        headers: { "content-type": binary ? contentTypeUnaryProto : contentTypeUnaryJson },
        body: binary
          ? toBinary(SendPingResponseSchema, response)
          : Buffer.from(toJsonString(SendPingResponseSchema, response)),
      };
    } catch (error) {
      return unaryErrorAnswer(form, error);
    }
  };
}

/** A failed call's answer in its form: gRPC status trailers, or Connect's JSON error. */
export function unaryErrorAnswer(form: UnaryForm, error: unknown): UnaryAnswer {
  if (form === "grpc") return grpcAnswer(EMPTY, statusTrailers(error));
  const connectError = toConnectError(error);
  const headers: Record<string, string> = { "content-type": contentTypeUnaryJson };
  connectError.metadata.forEach((value, name) => {
    headers[name] = value;
  });
  return {
    status: codeToHttpStatus(connectError.code),
    headers,
    body: errorToJsonBytes(connectError, undefined),
  };
}

const EMPTY = new Uint8Array(0);

function grpcAnswer(body: Uint8Array, trailers: Record<string, string>): UnaryAnswer {
  return { status: 200, headers: { "content-type": "application/grpc+proto" }, body, trailers };
}

/** The request, or undefined for anything the fast parse does not take as it is. */
function parseRequest(form: UnaryForm, body: Uint8Array) {
  try {
    if (form === "connect-json") {
      if (body.byteLength > PING_MESSAGE_MAX_BYTES) return undefined;
      // connect-node reads JSON with unknown fields ignored.
      const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
      return fromJsonString(SendPingRequestSchema, text, { ignoreUnknownFields: true });
    }
    if (form === "connect-proto") {
      if (body.byteLength > PING_MESSAGE_MAX_BYTES) return undefined;
      return fromBinary(SendPingRequestSchema, body);
    }
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const frames = new GrpcFrameReader(PING_MESSAGE_MAX_BYTES).push(bytes);
    if (frames === "too_large" || frames.length !== 1) return undefined;
    const [frame] = frames;
    if (!frame || frame.compressed) return undefined;
    // Trailing bytes of an unfinished second message: connect-node's to refuse.
    if (frame.message.byteLength + 5 !== body.byteLength) return undefined;
    return fromBinary(SendPingRequestSchema, frame.message);
  } catch {
    return undefined;
  }
}

/** A body already read, as the one-chunk stream connect-node reads. */
export async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  if (bytes.byteLength > 0) yield bytes;
}
