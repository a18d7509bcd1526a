import type { RouteConfig, RouteHandler } from "@hono/zod-openapi";
import type { Context, Hono, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { EdgeError } from "../../core/errors/edge-error";
import type { GatewayEnv } from "../context";

type Target = "param" | "query" | "header" | "json";

/** `items[0].quantity`, `lat`, `Idempotency-Key`; the body itself is `body`. */
function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "body";
  return path
    .map((part, index) =>
      typeof part === "number" ? `[${part}]` : index === 0 ? String(part) : `.${String(part)}`,
    )
    .join("");
}

/** The value as its schema parses it, or 400 `bad_request` naming the first field that broke its rule. */
function validated(schema: z.ZodType, value: unknown): object {
  const result = schema.safeParse(value);
  if (result.success) return result.data as object;
  const issue = result.error.issues[0];
  throw new EdgeError(
    "bad_request",
    issue ? `${fieldName(issue.path)} ${issue.message}` : "invalid request",
  );
}

// What hono's validator hands a query schema: one string per name, a list when repeated.
function queryValues(c: Context<GatewayEnv>): Record<string, string | string[]> {
  const values: Record<string, string | string[]> = {};
  for (const [name, list] of Object.entries(c.req.queries()))
    values[name] = list.length === 1 ? (list[0] ?? "") : list;
  return values;
}

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/** The JSON body: 400 without one or when it does not parse, 415 for another media type. */
async function jsonBody(c: Context<GatewayEnv>): Promise<unknown> {
  const type = c.req.header("content-type");
  if (!type)
    throw new EdgeError("bad_request", "a JSON body is required (Content-Type: application/json)");
  if (!JSON_MEDIA_TYPE.test(type))
    throw new EdgeError("unsupported_media_type", "Content-Type must be application/json");
  try {
    return await c.req.json();
  } catch {
    throw new EdgeError("bad_request", "body must be JSON");
  }
}

/**
 * Mounts a route declared with `createRoute` (gateway/api/*-api.ts) on `app`:
 * its `middleware` (roles) first, then one function that validates each
 * declared part of the request with its schema, hands the parsed values to
 * the handler as `c.req.valid(part)`, and runs it. The handler's answers
 * are typed by the route's responses.
 *
 * Not OpenAPIHono.openapi: that mounts one async middleware per part, with
 * async parsing and a hook on every request, which cost 1.9 µs of CPU per
 * status read against 0.6 µs for this (bench/gateway/schema-cost.ts); the
 * status read is the hot path. The document is built from the same route
 * objects by `apiDocument`.
 */
export function mountRoute<R extends RouteConfig>(
  app: Hono<GatewayEnv>,
  route: R,
  handler: RouteHandler<R, GatewayEnv>,
): Hono<GatewayEnv> {
  const { request = {}, middleware = [] } = route;
  const parts: [Target, z.ZodType, (c: Context<GatewayEnv>) => unknown][] = [];
  if (request.params) parts.push(["param", request.params, (c) => c.req.param()]);
  if (request.query) parts.push(["query", request.query, queryValues]);
  if (request.headers && !Array.isArray(request.headers)) {
    const names = Object.keys((request.headers as z.ZodObject).shape);
    parts.push([
      "header",
      request.headers,
      (c) => Object.fromEntries(names.map((name) => [name, c.req.header(name)])),
    ]);
  }
  const json = request.body?.content["application/json"] as { schema?: z.ZodType } | undefined;
  const body = json?.schema;
  const run = handler as unknown as (c: Context<GatewayEnv>) => Response | Promise<Response>;
  const validatedHandler = body
    ? async (c: Context<GatewayEnv>) => {
        for (const [target, schema, read] of parts)
          c.req.addValidatedData(target, validated(schema, read(c)));
        c.req.addValidatedData("json", validated(body, await jsonBody(c)));
        return run(c);
      }
    : (c: Context<GatewayEnv>) => {
        for (const [target, schema, read] of parts)
          c.req.addValidatedData(target, validated(schema, read(c)));
        return run(c);
      };
  const chain = Array.isArray(middleware) ? middleware : [middleware];
  const handlers = [...chain, validatedHandler] as MiddlewareHandler<GatewayEnv>[];
  const path = route.path.replace(/\{(\w+)\}/g, ":$1");
  return app.on(route.method.toUpperCase(), [path], ...handlers);
}

/**
 * A JSON answer already serialized (a cached search, a stored idempotent
 * answer), sent as it is. The type system cannot see inside the text, so
 * the result takes the route's declared answer type: the text was checked
 * against that schema before it was stored.
 */
export function storedJson<Answer>(c: Context, text: string, status: number): Answer {
  return c.body(text, status as ContentfulStatusCode, {
    "content-type": "application/json",
  }) as Answer;
}
