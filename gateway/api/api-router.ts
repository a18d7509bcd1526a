import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { EdgeError } from "../../core/errors/edge-error";
import type { GatewayEnv } from "../context";

/** `items[0].quantity`, `lat`, `Idempotency-Key`; the body itself is `body`. */
function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "body";
  return path
    .map((part, index) =>
      typeof part === "number" ? `[${part}]` : index === 0 ? String(part) : `.${String(part)}`,
    )
    .join("");
}

/**
 * Turns a schema's refusal into the one error shape: 400 `bad_request`
 * naming the first field that broke its rule ("lat must be a decimal number
 * from -180 to 180"). A route that needs a JSON body and got none says so.
 */
function refuseInvalid(
  result: { success: true } | { success: false; error: z.ZodError; target: string },
  c: Context<GatewayEnv>,
): undefined {
  if (result.success) return undefined;
  if (result.target === "json" && !c.req.header("content-type"))
    throw new EdgeError("bad_request", "a JSON body is required (Content-Type: application/json)");
  const issue = result.error.issues[0];
  const message = issue ? `${fieldName(issue.path)} ${issue.message}` : "invalid request";
  throw new EdgeError("bad_request", message);
}

/**
 * A router whose routes are declared with their schemas (`app.openapi(route,
 * handler)`): requests are validated before the handler runs, and a refusal
 * is the gateway's error shape.
 */
export function apiRouter(): OpenAPIHono<GatewayEnv> {
  return new OpenAPIHono<GatewayEnv>({ defaultHook: refuseInvalid });
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
