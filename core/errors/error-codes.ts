import { Code } from "@connectrpc/connect";

/**
 * Every error code the edge can answer with, and how each edge spells it:
 * HTTP status for the gateway, Connect/gRPC code for the ingest, WebSocket
 * close code for the tracking tier (4000-4999 is the application range).
 */
export const ERROR_CODES = {
  bad_request: { http: 400, connect: Code.InvalidArgument, ws: 4400 },
  invalid_message: { http: 400, connect: Code.InvalidArgument, ws: 4400 },
  unauthenticated: { http: 401, connect: Code.Unauthenticated, ws: 4401 },
  forbidden: { http: 403, connect: Code.PermissionDenied, ws: 4403 },
  not_found: { http: 404, connect: Code.NotFound, ws: 4404 },
  conflict: { http: 409, connect: Code.Aborted, ws: 4409 },
  rider_busy: { http: 409, connect: Code.FailedPrecondition, ws: 4409 },
  order_offered: { http: 409, connect: Code.FailedPrecondition, ws: 4409 },
  offer_expired: { http: 409, connect: Code.FailedPrecondition, ws: 4409 },
  stale_version: { http: 409, connect: Code.Aborted, ws: 4409 },
  illegal_transition: { http: 409, connect: Code.FailedPrecondition, ws: 4409 },
  idempotency_in_flight: { http: 409, connect: Code.Aborted, ws: 4409 },
  idempotency_mismatch: { http: 422, connect: Code.InvalidArgument, ws: 4400 },
  payload_too_large: { http: 413, connect: Code.ResourceExhausted, ws: 1009 },
  rate_limited: { http: 429, connect: Code.ResourceExhausted, ws: 4429 },
  not_owner: { http: 409, connect: Code.FailedPrecondition, ws: 4001 },
  order_rejected: { http: 422, connect: Code.InvalidArgument, ws: 4400 },
  upstream_failed: { http: 502, connect: Code.Unavailable, ws: 1011 },
  upstream_timeout: { http: 504, connect: Code.DeadlineExceeded, ws: 1011 },
  unavailable: { http: 503, connect: Code.Unavailable, ws: 1013 },
  draining: { http: 503, connect: Code.Unavailable, ws: 1012 },
  internal: { http: 500, connect: Code.Internal, ws: 1011 },
} as const satisfies Record<string, { http: number; connect: Code; ws: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;
