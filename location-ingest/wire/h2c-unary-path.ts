import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { LimitHit } from "../metrics";
import { endCall } from "./grpc-stream-path";
import { messageTimeoutError } from "./message-guard";
import { ResponseQueue } from "./response-queue";
import type { CallAdmission } from "./rider-calls";
import { PING_MESSAGE_MAX_BYTES } from "./routes";
import type { SendPing } from "./send-ping";
import {
  createUnarySendPing,
  leanUnaryForm,
  oneChunk,
  UNARY_BODY_MAX_BYTES,
  type UnaryAnswer,
  unaryErrorAnswer,
} from "./unary-send-ping";

const SEND_PING_PATH = `/${LocationIngestService.typeName}/${LocationIngestService.method.sendPing.name}`;

/** A request body handed on to connect-node: the bytes read so far, then the rest. */
type ReadBody = AsyncIterable<Uint8Array>;

/**
 * Unary SendPing over h2c (Connect JSON / proto, gRPC) without connect-node
 * (unary-send-ping.ts). `serve` returns false when the call is not one it
 * takes; when it takes the call but its body is connect-node's to judge,
 * `fallBack` gets that body and connect-node answers as before.
 */
export function createH2cUnaryPath(deps: {
  sendPing: SendPing;
  reportLimit: LimitHit;
  messageTimeoutMs: number;
}) {
  const { reportLimit, messageTimeoutMs } = deps;
  const answerSendPing = createUnarySendPing(deps.sendPing);
  return function serve(
    request: Http2ServerRequest,
    response: Http2ServerResponse,
    admission: CallAdmission,
    onBytes: () => void,
    fallBack: (body: ReadBody) => Promise<void>,
  ): Promise<void> | false {
    if (request.url !== SEND_PING_PATH) return false;
    const { headers } = request;
    const form = leanUnaryForm(
      { method: request.method, header: (name) => single(headers[name]) },
      "h2c",
    );
    if (!form) return false;
    return (async () => {
      const body = await readBody(request, form === "grpc", messageTimeoutMs, onBytes);
      let answer: UnaryAnswer | undefined;
      if (body === "gone") return;
      if (body === "timeout") {
        reportLimit("message_timeout", { method: LocationIngestService.method.sendPing.name });
        answer = unaryErrorAnswer(form, messageTimeoutError(messageTimeoutMs));
      } else if (body instanceof Uint8Array) {
        answer = await answerSendPing(form, body, admission);
        if (!answer) return fallBack(oneChunk(body));
      } else {
        return fallBack(body);
      }
      if (response.stream.destroyed || response.stream.closed) return;
      response.writeHead(answer.status, answer.headers);
      if (answer.body.byteLength > 0) response.write(answer.body);
      if (answer.trailers) response.addTrailers(answer.trailers);
      endCall(response);
    })();
  };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * The whole body when it ends within the message timeout and one ping
 * message's bytes; "timeout" when it does not come in time, "gone" when
 * the stream is reset before it ends; past that, or once a gRPC length
 * prefix (`framed`) says more than one ping message,
 * size, the bytes read and the rest as they come (connect-node's message
 * guard refuses or reads them, as for any other call).
 */
function readBody(
  request: Http2ServerRequest,
  framed: boolean,
  timeoutMs: number,
  onBytes: () => void,
): Promise<Uint8Array | "timeout" | "gone" | ReadBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let rest: ResponseQueue<Uint8Array> | undefined;
    const timer = setTimeout(() => {
      request.off("data", collect);
      resolve("timeout");
    }, timeoutMs);
    const collect = (chunk: Buffer) => {
      onBytes();
      if (rest) return rest.push(chunk);
      chunks.push(chunk);
      const before = bytes;
      bytes += chunk.byteLength;
      // A gRPC length prefix past the limit is refused at once, as on every other call.
      const refusedByPrefix =
        framed &&
        before < 5 &&
        bytes >= 5 &&
        Buffer.concat(chunks).readUInt32BE(1) > PING_MESSAGE_MAX_BYTES;
      if (bytes <= UNARY_BODY_MAX_BYTES && !refusedByPrefix) return;
      clearTimeout(timer);
      rest = new ResponseQueue<Uint8Array>();
      resolve(readOn(chunks, rest));
    };
    request.on("data", collect);
    request.once("end", () => {
      if (rest) return rest.end();
      clearTimeout(timer);
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    request.once("error", (error) => rest?.fail(error));
    // Reset before its body ended: nobody to answer.
    request.stream.once("close", () => {
      if (rest) return rest.end();
      clearTimeout(timer);
      resolve("gone");
    });
  });
}

async function* readOn(read: Uint8Array[], rest: AsyncIterable<Uint8Array>): ReadBody {
  yield* read;
  yield* rest;
}
