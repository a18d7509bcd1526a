import { z } from "@hono/zod-openapi";
import { MAX_GEO_LATITUDE } from "../../core/geo";
import { ORDER_STATUSES } from "../../core/order-status";
import { KEY_PART } from "../../core/redis/keys";

/**
 * The gateway's input rules as zod schemas: each validates a request and
 * describes itself in the OpenAPI document. Every check of a field carries
 * the same message, a predicate ("must be ..."); the validation hook puts
 * the field's name in front of it, so a refusal names the field and its rule.
 */
const must = (rule: string) => ({ error: `must be ${rule}` });

const KEY_PART_RULE = "1-64 of A-Z a-z 0-9 . _ : -";

/** An id that is also a Redis key part (order, rider, restaurant, menu item). */
export function keyPartId(what: string, example?: string) {
  const rule = must(`${what} (${KEY_PART_RULE})`);
  return z
    .string(rule)
    .regex(KEY_PART, rule)
    .openapi({
      description: `${what}; ${KEY_PART_RULE}`,
      ...(example === undefined ? {} : { example }),
    });
}

/** A city id as riders' tokens and the order service name it. */
export const CITY_ID = /^[a-z0-9-]{1,40}$/;
const cityRule = must("a city id (1-40 of a-z 0-9 -)");
export const cityId = z
  .string(cityRule)
  .regex(CITY_ID, cityRule)
  .openapi({ description: "city id: 1-40 of a-z 0-9 -", example: "london" });

// Plain decimal only: no hex, exponent, sign "+", spaces, "Infinity" or empty
// string, which Number() would all accept and Redis would then refuse.
const PLAIN_DECIMAL = /^-?\d{1,12}(\.\d{1,20})?$/;
const PLAIN_INTEGER = /^\d{1,12}$/;

/**
 * A query parameter written in plain decimal (`51.5`, `-0.12`) within
 * bounds, parsed to a number; `integer` also refuses a fraction. With a
 * `fallback`, absent or empty takes it. Documented as a number, with the
 * notation rule in its description.
 */
export function decimalQuery(bounds: {
  min: number;
  max: number;
  integer?: boolean;
  fallback?: number;
  description: string;
  example?: number;
}) {
  const { min, max, integer = false, fallback } = bounds;
  const rule = must(`${integer ? "an integer" : "a decimal number"} from ${min} to ${max}`);
  const notation = integer
    ? "digits only"
    : "plain decimal (digits, an optional leading - and . fraction; no exponent, + or spaces)";
  const documented = {
    type: integer ? ("integer" as const) : ("number" as const),
    minimum: min,
    maximum: max,
    description: `${bounds.description}; ${notation}`,
    ...(bounds.example === undefined ? {} : { example: bounds.example }),
  };
  const parsed = z
    .string(rule)
    .regex(integer ? PLAIN_INTEGER : PLAIN_DECIMAL, rule)
    .transform(Number)
    .pipe(z.number().min(min, rule).max(max, rule));
  if (fallback === undefined) return parsed.openapi(documented);
  return z
    .preprocess((value) => (value === "" ? undefined : value), parsed.default(fallback))
    .openapi({ ...documented, default: fallback });
}

export const latitudeQuery = decimalQuery({
  min: -MAX_GEO_LATITUDE,
  max: MAX_GEO_LATITUDE,
  description: "latitude (Redis GEO's web-mercator range)",
  example: 51.5072,
});
export const longitudeQuery = decimalQuery({
  min: -180,
  max: 180,
  description: "longitude",
  example: -0.1276,
});

/** An integer within bounds in a JSON body. */
export function integerField(bounds: {
  min: number;
  max: number;
  description: string;
  example?: number;
}) {
  const rule = must(`an integer from ${bounds.min} to ${bounds.max}`);
  return z
    .number(rule)
    .int(rule)
    .min(bounds.min, rule)
    .max(bounds.max, rule)
    .openapi({
      description: bounds.description,
      ...(bounds.example === undefined ? {} : { example: bounds.example }),
    });
}

/** A non-empty string of at most `maxLength` characters in a JSON body. */
export function textField(maxLength: number, description: string, example: string) {
  const rule = must(`a non-empty string of at most ${maxLength} characters`);
  return z.string(rule).min(1, rule).max(maxLength, rule).openapi({ description, example });
}

function boundedNumber(what: string, min: number, max: number, example: number) {
  const rule = must(`${what} from ${min} to ${max}`);
  return z.number(rule).min(min, rule).max(max, rule).openapi({ example });
}

/** A point on the map, storable in a Redis GEO set. */
export const latLng = z
  .object(
    {
      lat: boundedNumber("a latitude", -MAX_GEO_LATITUDE, MAX_GEO_LATITUDE, 51.5155),
      lng: boundedNumber("a longitude", -180, 180, -0.0755),
    },
    must("{lat, lng}"),
  )
  .openapi("LatLng");

/** An order's status (core/order-status.ts). */
export const orderStatus = z
  .enum(ORDER_STATUSES, must(`one of ${ORDER_STATUSES.join(", ")}`))
  .openapi("OrderStatus", {
    description:
      "CONFIRMED → ASSIGNED → READY → PICKED_UP → DELIVERED, and CONFIRMED or ASSIGNED → CANCELLED. Clients must accept values they do not know (new statuses may be added).",
  });

/** A JSON object body; anything else is refused as a whole with "body must be a JSON object". */
export function jsonObject<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.object(shape, must("a JSON object"));
}
