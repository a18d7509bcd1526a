import type { EdgeError } from "./edge-error";
import type { ErrorCode } from "./error-codes";

/** The one JSON error shape every HTTP surface of the edge answers with. */
export interface ErrorBody {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly requestId: string;
  };
}

/** The body of `error`'s answer: its code, its client message (never an `internal` error's own words), the request id. */
export function errorBody(error: EdgeError, requestId: string): ErrorBody {
  return { error: { code: error.code, message: error.clientMessage, requestId } };
}

/** `error` as a JSON response with its HTTP status and the `X-Request-Id` header. */
export function errorResponse(
  error: EdgeError,
  requestId: string,
  headers: Record<string, string> = {},
): Response {
  const all: Record<string, string> = { ...headers, "x-request-id": requestId };
  if (error.retryAfterSeconds !== undefined) all["retry-after"] ??= String(error.retryAfterSeconds);
  return Response.json(errorBody(error, requestId), { status: error.httpStatus, headers: all });
}

// The rule hono's requestId middleware applies to an inbound id: short and plain.
const INBOUND_REQUEST_ID = /^[\w\-=]{1,255}$/;

/** The caller's `X-Request-Id` when it is plain and short, else a fresh one. */
export function requestIdOf(request: Request): string {
  const inbound = request.headers.get("x-request-id");
  return inbound && INBOUND_REQUEST_ID.test(inbound) ? inbound : crypto.randomUUID();
}
