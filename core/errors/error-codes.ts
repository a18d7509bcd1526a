import { Code } from "@connectrpc/connect";

/**
 * Every error code the edge can answer with, and how each edge spells it:
 * HTTP status (the gateway, the tracking tier before an upgrade, the
 * ingest's HTTP port) and Connect/gRPC code (the ingest). WebSocket close
 * codes are the tracking protocol's own: core/protocol/tracking-protocol.ts.
 */
export const ERROR_CODES = {
  bad_request: { http: 400, connect: Code.InvalidArgument },
  invalid_message: { http: 400, connect: Code.InvalidArgument },
  unauthenticated: { http: 401, connect: Code.Unauthenticated },
  forbidden: { http: 403, connect: Code.PermissionDenied },
  not_found: { http: 404, connect: Code.NotFound },
  rider_busy: { http: 409, connect: Code.FailedPrecondition },
  order_offered: { http: 409, connect: Code.FailedPrecondition },
  offer_expired: { http: 409, connect: Code.FailedPrecondition },
  stale_version: { http: 409, connect: Code.Aborted },
  illegal_transition: { http: 409, connect: Code.FailedPrecondition },
  idempotency_in_flight: { http: 409, connect: Code.Aborted },
  idempotency_mismatch: { http: 422, connect: Code.InvalidArgument },
  payload_too_large: { http: 413, connect: Code.ResourceExhausted },
  unsupported_media_type: { http: 415, connect: Code.InvalidArgument },
  headers_too_large: { http: 431, connect: Code.ResourceExhausted },
  message_timeout: { http: 408, connect: Code.DeadlineExceeded },
  rate_limited: { http: 429, connect: Code.ResourceExhausted },
  too_many_connections: { http: 429, connect: Code.ResourceExhausted },
  /** A newer StreamPings of the rider replaced this one: the app must not reconnect it. */
  stream_superseded: { http: 409, connect: Code.FailedPrecondition },
  order_rejected: { http: 422, connect: Code.InvalidArgument },
  upstream_failed: { http: 502, connect: Code.Unavailable },
  upstream_timeout: { http: 504, connect: Code.DeadlineExceeded },
  upstream_unavailable: { http: 503, connect: Code.Unavailable },
  auth_unavailable: { http: 503, connect: Code.Unavailable },
  unavailable: { http: 503, connect: Code.Unavailable },
  draining: { http: 503, connect: Code.Unavailable },
  internal: { http: 500, connect: Code.Internal },
} as const satisfies Record<string, { http: number; connect: Code }>;

export type ErrorCode = keyof typeof ERROR_CODES;
