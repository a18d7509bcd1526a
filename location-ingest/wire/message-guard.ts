import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { type DescMethod, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import { EdgeError } from "../../core/errors/edge-error";
import { settleWithin } from "../../core/lifecycle/settle-within";
import type { TransportLimit } from "../metrics";
import { toConnectError } from "./connect-errors";
import { GrpcFrameReader } from "./grpc-frames";

export interface MessageGuardOptions {
  readonly method: DescMethod;
  /** The request's headers: content-type and the compression headers pick the framing. */
  readonly header: Headers;
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Called for every chunk read (the connection's keep-alive clock). */
  readonly onBytes?: () => void;
  readonly onLimit: (limit: TransportLimit) => void;
  /** Aborted when the call is over (stopReading): the body is read no further. */
  readonly stop?: AbortSignal;
}

/**
 * What a handler runs when it ends its call itself (a stream's token expiry,
 * supersede or drain): the guarded body stops, its message clock with it, and
 * nothing more is read (the request waits on flow control). connect-node
 * finishes a call only once its end is written, which a client reading
 * nothing holds back: the clock of a half-sent message would otherwise run
 * on and count a message_timeout for a call already over.
 */
export const stopReading = createContextKey<() => void>(() => undefined, {
  description: "stops the call's guarded request body",
});

type GuardedLimit = Extract<
  TransportLimit,
  "message_timeout" | "message_too_large" | "malformed_message"
>;

/** What a client that did not send its message within `timeoutMs` is told. */
export function messageTimeoutError(timeoutMs: number): EdgeError {
  return new EdgeError(
    "message_timeout",
    `a request message did not arrive within ${timeoutMs} ms`,
  );
}

const ERRORS: Record<GuardedLimit, (options: MessageGuardOptions) => EdgeError> = {
  message_timeout: ({ timeoutMs }) => messageTimeoutError(timeoutMs),
  message_too_large: ({ maxBytes }) =>
    new EdgeError("payload_too_large", `message larger than ${maxBytes} bytes`),
  malformed_message: ({ method }) =>
    new EdgeError("invalid_message", `malformed ${method.input.typeName}`),
};

/**
 * A request body as connect-node reads it, checked message by message
 * before connect-node sees the bytes:
 * - a message must arrive within `timeoutMs` of its first byte (a unary
 *   call's request: of the call's start); only time spent waiting for the
 *   client counts, not time the handler takes to read on;
 * - a length prefix over `maxBytes` is refused before its body is read;
 * - a binary message must parse as the method's input, so malformed
 *   protobuf is InvalidArgument (connect-es reports its own binary parse
 *   failures as Internal).
 * A failed check throws the ConnectError that ends the call; chunks pass
 * through unchanged otherwise.
 */
export function guardMessages(
  body: AsyncIterable<Uint8Array>,
  options: MessageGuardOptions,
): AsyncIterable<Uint8Array> {
  const framing = framingOf(options.header);
  // connect-node refuses a declared Content-Length over the limit before reading: count it here.
  if (!framing.enveloped && Number(options.header.get("content-length")) > options.maxBytes) {
    options.onLimit("message_too_large");
  }
  return checkedMessages(body, framing, options);
}

async function* checkedMessages(
  body: AsyncIterable<Uint8Array>,
  framing: Framing,
  options: MessageGuardOptions,
): AsyncGenerator<Uint8Array> {
  const { method, maxBytes, timeoutMs, onBytes, stop } = options;
  const fail = (limit: GuardedLimit) => {
    options.onLimit(limit);
    return toConnectError(ERRORS[limit](options));
  };
  const frames = framing.enveloped ? new GrpcFrameReader(maxBytes) : undefined;
  const unary = method.methodKind === "unary";
  const whole: Uint8Array[] = [];
  let wholeBytes = 0;
  const iterator = body[Symbol.asyncIterator]();
  let inMessage = unary;
  let waitedMs = 0;
  for (;;) {
    const started = performance.now();
    const result = await nextWithin(iterator, inMessage ? timeoutMs - waitedMs : undefined, stop);
    if (result === "stopped") throw new ConnectError("the call is over", Code.Canceled);
    if (result === "timeout") throw fail("message_timeout");
    if (inMessage) waitedMs += performance.now() - started;
    if (result.done) break;
    const chunk = result.value;
    onBytes?.();
    if (frames) {
      const completed = frames.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if (completed === "too_large") throw fail("message_too_large");
      for (const frame of completed) {
        const limit = framing.binary
          ? checkMessage(method, frame, framing.encoding, maxBytes)
          : undefined;
        if (limit) throw fail(limit);
      }
      // A chunk that finished a message started the one it leaves unfinished
      // (a unary call's clock runs from its start to its end).
      if (completed.length > 0 && !unary) waitedMs = 0;
      inMessage = unary || frames.hasPartialFrame();
    } else {
      wholeBytes += chunk.byteLength;
      if (wholeBytes > maxBytes) throw fail("message_too_large");
      if (framing.binary) whole.push(chunk);
    }
    yield chunk;
  }
  if (!frames && framing.binary && wholeBytes > 0) {
    const message = Buffer.concat(whole);
    const limit = checkMessage(
      method,
      { compressed: framing.encoding !== undefined, message },
      framing.encoding,
      maxBytes,
    );
    if (limit) throw fail(limit);
  }
}

interface Framing {
  /** Length-prefixed messages (gRPC, gRPC-Web, Connect streaming), or one whole body (Connect unary). */
  readonly enveloped: boolean;
  /** Protobuf binary; JSON and base64 text are left to connect-node, whose errors are right already. */
  readonly binary: boolean;
  readonly encoding: string | undefined;
}

function framingOf(header: Headers): Framing {
  const type = (header.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (type.startsWith("application/grpc-web-text")) {
    return { enveloped: false, binary: false, encoding: undefined };
  }
  const enveloped = /^application\/(grpc|grpc-web|connect)(\+|$)/.test(type);
  const binary = !type.endsWith("json");
  const encoding = enveloped
    ? (header.get("grpc-encoding") ?? header.get("connect-content-encoding"))
    : header.get("content-encoding");
  return {
    enveloped,
    binary,
    encoding: encoding && encoding !== "identity" ? encoding : undefined,
  };
}

/** Why a complete message is refused, if it is. */
function checkMessage(
  method: DescMethod,
  frame: { compressed: boolean; message: Uint8Array },
  encoding: string | undefined,
  maxBytes: number,
): GuardedLimit | undefined {
  let bytes = frame.message;
  if (frame.compressed) {
    // An unknown encoding is connect-node's to refuse (Unimplemented).
    if (encoding !== "gzip" && encoding !== "br") return undefined;
    try {
      const options = { maxOutputLength: maxBytes };
      bytes =
        encoding === "gzip" ? gunzipSync(bytes, options) : brotliDecompressSync(bytes, options);
    } catch (error) {
      return (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE"
        ? "message_too_large"
        : "malformed_message";
    }
  }
  try {
    fromBinary(method.input, bytes);
    return undefined;
  } catch {
    return "malformed_message";
  }
}

/**
 * The iterator's next result: "timeout" when none came within `ms` (no
 * limit when undefined), "stopped" once `stop` is aborted.
 */
async function nextWithin<T>(
  iterator: AsyncIterator<T>,
  ms: number | undefined,
  stop: AbortSignal | undefined,
): Promise<IteratorResult<T> | "timeout" | "stopped"> {
  if (stop?.aborted) return "stopped";
  if (ms !== undefined && ms <= 0) return "timeout";
  const next = iterator.next();
  let onStop = () => {};
  const stopped = new Promise<"stopped">((resolve) => {
    onStop = () => resolve("stopped");
    stop?.addEventListener("abort", onStop);
  });
  const either = Promise.race([next, stopped]);
  let result: IteratorResult<T> | "timeout" | "stopped";
  try {
    result = ms === undefined ? await either : await settleWithin(either, ms, "timeout" as const);
  } finally {
    stop?.removeEventListener("abort", onStop);
  }
  // The abandoned read settles when the stream is torn down; nobody waits for it.
  if (result === "timeout" || result === "stopped") next.catch(() => undefined);
  return result;
}
