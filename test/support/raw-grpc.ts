import type http2 from "node:http2";

export interface RawH2Result {
  /** HTTP status of the response headers. */
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** The RST_STREAM code the stream closed with (0 for a clean end). */
  rstCode: number;
}

/**
 * One HTTP/2 request with hand-made body bytes, for inputs no well-behaved
 * client would produce (malformed, oversized, lying or unfinished frames).
 * With `end: false` the request side stays open after `body`.
 */
export function rawH2Request(
  session: http2.ClientHttp2Session,
  request: { path: string; headers: Record<string, string>; body: Buffer; end?: boolean },
): Promise<RawH2Result> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": request.path,
      ...request.headers,
    });
    const chunks: Buffer[] = [];
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      headers = h;
      status = Number(h[":status"]);
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error: NodeJS.ErrnoException) => {
      // A reset after a complete answer is how servers end a call the client still sends on.
      if (status === 0) reject(error);
    });
    stream.on("close", () =>
      resolve({
        status,
        headers,
        trailers,
        body: Buffer.concat(chunks),
        rstCode: stream.rstCode ?? 0,
      }),
    );
    if (request.end === false) stream.write(request.body);
    else stream.end(request.body);
  });
}

export interface RawGrpcResult {
  status: string | undefined;
  message: string | undefined;
  /** Raw response body bytes (gRPC frames). */
  body: Buffer;
}

/** A gRPC call (application/grpc) with hand-made request bytes; its grpc-status and message. */
export async function rawGrpcCall(
  session: http2.ClientHttp2Session,
  path: string,
  token: string,
  body: Buffer,
  options: { end?: boolean; headers?: Record<string, string> } = {},
): Promise<RawGrpcResult> {
  const result = await rawH2Request(session, {
    path,
    headers: {
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
      ...options.headers,
    },
    body,
    end: options.end,
  });
  const status = result.trailers["grpc-status"] ?? result.headers["grpc-status"];
  const message = result.trailers["grpc-message"] ?? result.headers["grpc-message"];
  return {
    status: status === undefined ? undefined : String(status),
    message: message === undefined ? undefined : decodeURIComponent(String(message)),
    body: result.body,
  };
}

/** A length-prefixed frame around `payload`, optionally lying about its length or flagged compressed. */
export function grpcFrame(payload: Uint8Array, declaredLength = payload.length, flags = 0): Buffer {
  const frame = Buffer.alloc(5 + payload.length);
  frame[0] = flags;
  frame.writeUInt32BE(declaredLength, 1);
  frame.set(payload, 5);
  return frame;
}
