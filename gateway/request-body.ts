import type { Context } from "hono";
import { EdgeError } from "../core/errors/edge-error";

/** A city id as riders' tokens and the order service name it. */
export const CITY_ID = /^[a-z0-9-]{1,40}$/;

/** The `city` query parameter; 400 unless it is a city id. */
export function cityParam(c: Context): string {
  const city = c.req.query("city") ?? "";
  if (!CITY_ID.test(city)) throw new EdgeError("bad_request", "city must be a city id");
  return city;
}

/** The request's JSON object body; 400 `bad_request` for anything else. */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new EdgeError("bad_request", "body must be JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new EdgeError("bad_request", "body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, name: string, pattern?: RegExp): string {
  const value = body[name];
  if (typeof value !== "string" || value === "" || (pattern && !pattern.test(value))) {
    throw new EdgeError(
      "bad_request",
      `${name} must be a ${pattern ? "valid " : ""}non-empty string`,
    );
  }
  return value;
}

export function integerField(
  body: Record<string, unknown>,
  name: string,
  bounds: { min: number; max: number },
  fallback?: number,
): number {
  const value = body[name] ?? fallback;
  if (
    typeof value !== "number" ||
    !Number.isInteger(value) ||
    value < bounds.min ||
    value > bounds.max
  ) {
    throw new EdgeError(
      "bad_request",
      `${name} must be an integer from ${bounds.min} to ${bounds.max}`,
    );
  }
  return value;
}

// Plain decimal only: no hex, exponent, sign "+", spaces, "Infinity" or empty
// string, which Number() would all accept and Redis would then refuse.
const PLAIN_DECIMAL = /^-?\d{1,12}(\.\d{1,20})?$/;
const PLAIN_INTEGER = /^\d{1,12}$/;

/**
 * A query parameter written in plain decimal (`51.5`, `-0.12`) within
 * bounds; `integer` also refuses a fraction. 400 otherwise; absent or empty
 * takes `fallback` when there is one.
 */
export function numberParam(
  c: Context,
  name: string,
  bounds: { min: number; max: number; integer?: boolean },
  fallback?: number,
): number {
  const raw = c.req.query(name);
  const kind = bounds.integer ? "an integer" : "a decimal number";
  const problem = `${name} must be ${kind} from ${bounds.min} to ${bounds.max}`;
  if (raw === undefined || raw === "") {
    if (fallback === undefined) throw new EdgeError("bad_request", problem);
    return fallback;
  }
  if (!(bounds.integer ? PLAIN_INTEGER : PLAIN_DECIMAL).test(raw))
    throw new EdgeError("bad_request", problem);
  const value = Number(raw);
  if (value < bounds.min || value > bounds.max) throw new EdgeError("bad_request", problem);
  return value;
}
