import type http2 from "node:http2";

export interface RawGrpcResult {
  status: string | undefined;
  message: string | undefined;
  /** Raw response body bytes (gRPC frames). */
  body: Buffer;
}

/**
 * Sends hand-made bytes as a gRPC call's request body, for inputs no
 * well-behaved client would produce (malformed or oversized frames).
 */
export function rawGrpcCall(
  session: http2.ClientHttp2Session,
  path: string,
  token: string,
  body: Buffer,
): Promise<RawGrpcResult> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      const status = trailers["grpc-status"] ?? headers["grpc-status"];
      const message = trailers["grpc-message"] ?? headers["grpc-message"];
      resolve({
        status: status === undefined ? undefined : String(status),
        message: message === undefined ? undefined : decodeURIComponent(String(message)),
        body: Buffer.concat(chunks),
      });
    });
    stream.end(body);
  });
}

/** A gRPC frame around `payload`, optionally lying about its length. */
export function grpcFrame(payload: Uint8Array, declaredLength = payload.length): Buffer {
  const frame = Buffer.alloc(5 + payload.length);
  frame.writeUInt32BE(declaredLength, 1);
  frame.set(payload, 5);
  return frame;
}
