import { z } from "@hono/zod-openapi";
import { ERROR_CODES, type ErrorCode } from "../../core/errors/error-codes";

/** When each code is answered: the route's own list, shown in its response's description. */
export type ErrorCases = Partial<Record<ErrorCode, string>>;

/** What any authenticated route (`/v1/*`) may answer besides its own errors. */
const EVERY_V1_ROUTE: ErrorCases = {
  bad_request:
    "malformed percent-encoding in the URL, or a parameter, header or body field that breaks its rule (the message names the field)",
  unauthenticated: "no bearer token, or one that is invalid, expired or signed with another key",
  rate_limited:
    "over the identity's request budget (`RATE_LIMIT_REQUESTS` per `RATE_LIMIT_WINDOW_MS`), or too many failed authentications from this address; `Retry-After` says when to retry",
  headers_too_large: "query string or request head over the gateway's limits",
  auth_unavailable:
    "the token names a signing key the gateway cannot fetch now (JWKS unreachable); `Retry-After`",
  unavailable:
    "Redis is unreachable, or an order change could not be confirmed on its replicas (`ORDER_WRITE_REPLICAS`); `Retry-After`",
  internal: "a bug; the message hides its cause (the gateway logs it)",
};

/** What a route that reads a JSON body may also answer. */
const WITH_BODY: ErrorCases = {
  bad_request:
    "the body is not JSON, not an object, or a field breaks its rule (the message names the field, e.g. `items[0].quantity`)",
  payload_too_large: "body over `GATEWAY_MAX_BODY_BYTES`",
  unsupported_media_type: "a body whose Content-Type is not application/json",
};

/** What a route calling the order or search service may also answer. */
export const UPSTREAM_ERRORS: ErrorCases = {
  upstream_failed: "the service failed, was unreachable, or answered a body it does not promise",
  upstream_timeout: "the service did not answer within `UPSTREAM_TIMEOUT_MS`",
  upstream_unavailable:
    "the service's circuit breaker is open after repeated failures; `Retry-After`",
};

const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
const REQUEST_ID = { "X-Request-Id": header("X-Request-Id") };
const RATE_LIMIT = {
  "RateLimit-Limit": header("RateLimit-Limit"),
  "RateLimit-Remaining": header("RateLimit-Remaining"),
  "RateLimit-Reset": header("RateLimit-Reset"),
};
const RETRY_AFTER = { "Retry-After": header("Retry-After") };

/** The response headers the document's `components.headers` defines. */
export const RESPONSE_HEADERS = {
  "X-Request-Id": {
    description:
      "The request's id: the caller's own X-Request-Id when it is plain and short, else a new one; also in every error body and log line",
    schema: { type: "string" },
  },
  "RateLimit-Limit": {
    description: "Requests this identity may make per window",
    schema: { type: "integer" },
  },
  "RateLimit-Remaining": {
    description: "Requests left in the current window",
    schema: { type: "integer" },
  },
  "RateLimit-Reset": {
    description: "Seconds until the window turns",
    schema: { type: "integer" },
  },
  "Retry-After": {
    description: "Seconds to wait before trying again",
    schema: { type: "integer" },
  },
} as const;

function errorSchema(codes: [ErrorCode, ...ErrorCode[]]) {
  return z.object({
    error: z.object({
      code: z.enum(codes),
      message: z.string(),
      requestId: z.string(),
    }),
  });
}

/**
 * A route's error answers, one per HTTP status: the body
 * `{ error: { code, message, requestId } }` with `code` limited to the codes
 * this route can answer at that status, and a description of when.
 * `authenticated` adds the errors every /v1 route shares; `body` those of
 * a JSON body.
 */
export function errorResponses(
  own: ErrorCases,
  options: { authenticated?: boolean; body?: boolean } = {},
) {
  const { authenticated = true, body = false } = options;
  const cases: ErrorCases = {
    ...(authenticated ? EVERY_V1_ROUTE : {}),
    ...(body ? WITH_BODY : {}),
    ...own,
  };
  const byStatus = new Map<number, [ErrorCode, string][]>();
  for (const [code, when] of Object.entries(cases) as [ErrorCode, string][]) {
    const status = ERROR_CODES[code].http;
    byStatus.set(status, [...(byStatus.get(status) ?? []), [code, when]]);
  }
  const responses: Record<
    string,
    {
      description: string;
      headers: Record<string, { $ref: string }>;
      content: { "application/json": { schema: ReturnType<typeof errorSchema> } };
    }
  > = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const codes = list.map(([code]) => code) as [ErrorCode, ...ErrorCode[]];
    const retry = status === 429 || status === 503 || codes.includes("idempotency_in_flight");
    responses[String(status)] = {
      description: list.map(([code, when]) => `\`${code}\`: ${when}`).join("\n\n"),
      headers: {
        ...REQUEST_ID,
        ...(status === 429 ? RATE_LIMIT : {}),
        ...(retry ? RETRY_AFTER : {}),
      },
      content: { "application/json": { schema: errorSchema(codes) } },
    };
  }
  return responses;
}

/** A JSON success answer with the request id and (on /v1 routes) the rate-limit headers. */
export function jsonResponse<Schema extends z.ZodType>(
  schema: Schema,
  description: string,
  options: { authenticated?: boolean; headers?: Record<string, object> } = {},
) {
  return {
    description,
    headers: {
      ...REQUEST_ID,
      ...(options.authenticated === false ? {} : RATE_LIMIT),
      ...options.headers,
    },
    content: { "application/json": { schema } },
  };
}

/** The security requirement of every /v1 route. */
export const BEARER = [{ bearer: [] }];
