import { ConnectError } from "@connectrpc/connect";
import { ERROR_CODES, type ErrorCode } from "./error-codes";

/**
 * `Retry-After` of a 503 that does not know better: a node that cannot serve
 * now (Redis away, draining, no owner yet) tells every client to wait a
 * moment rather than retry at once and in step with the rest of its fleet.
 */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 1;

/** What a client is told of any `internal` error: a bug's own words are for the log. */
export const INTERNAL_MESSAGE = "internal error";

/**
 * The one error type of the edge. Each tier translates it once at its edge
 * (HTTP JSON, ConnectError); `message` is safe to show a
 * client, `cause` is for the logs only. An `internal` error is a bug, and
 * its message may name what the bug met (a damaged record's field, a
 * script's reply): clients get `clientMessage`, INTERNAL_MESSAGE, instead.
 */
export class EdgeError extends Error {
  /**
   * When set, the answer carries `Retry-After` (seconds): the client may try
   * again then. Every 503 has one (UNAVAILABLE_RETRY_AFTER_SECONDS unless given).
   */
  readonly retryAfterSeconds?: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options);
    this.name = "EdgeError";
    const retryAfterSeconds =
      options?.retryAfterSeconds ??
      (ERROR_CODES[code].http === 503 ? UNAVAILABLE_RETRY_AFTER_SECONDS : undefined);
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  /** The message a client may see: `message`, except for `internal` (INTERNAL_MESSAGE). */
  get clientMessage(): string {
    return this.code === "internal" ? INTERNAL_MESSAGE : this.message;
  }

  /**
   * The ConnectError of its code; `retry-after` in its metadata when set,
   * which Connect sends as a response header on a unary call (gRPC: trailer).
   */
  toConnectError(): ConnectError {
    const metadata =
      this.retryAfterSeconds === undefined
        ? undefined
        : { "retry-after": String(this.retryAfterSeconds) };
    return new ConnectError(
      this.clientMessage,
      ERROR_CODES[this.code].connect,
      metadata,
      undefined,
      this,
    );
  }

  /** Turns anything thrown into an EdgeError; unknown causes become `internal`. */
  static from(error: unknown): EdgeError {
    if (error instanceof EdgeError) return error;
    return new EdgeError("internal", INTERNAL_MESSAGE, { cause: error });
  }
}
