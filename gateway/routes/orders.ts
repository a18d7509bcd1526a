import { createHash } from "node:crypto";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import { EdgeError } from "../../core/errors/edge-error";
import { errorBody } from "../../core/errors/error-response";
import { isValidLatLng } from "../../core/geo";
import type { RedisConnection } from "../../core/redis/client";
import {
  beginIdempotent,
  finishIdempotent,
  type IdempotencyClaim,
  renewIdempotent,
} from "../../core/redis/idempotency-scripts";
import { isKeyPart } from "../../core/redis/keys";
import { createOrderRecord, type OrderRecord } from "../../core/redis/order-record";
import type { GatewayEnv } from "../context";
import { requireRole } from "../middleware/require-role";
import { readJsonObject, stringField } from "../request-body";
import type { UpstreamAnswer, UpstreamService } from "../upstream-service";

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{8,128}$/;
const REPLAY_FOR_MS = 24 * 3_600_000;
/** Renewals per lease: two may fail (a Redis blip) before the lease runs out. */
const RENEWALS_PER_LEASE = 3;

type CreateOutcome =
  | { kind: "created"; order: OrderRecord; total?: number }
  | { kind: "refused"; message: string };

interface OrderRequest {
  restaurantId: string;
  items: { menuItemId: string; quantity: number }[];
  dropoff: { lat: number; lng: number };
  paymentMethod: string;
}

/** Only what the order service needs; client prices or totals never go upstream. */
function parseOrderRequest(body: Record<string, unknown>): OrderRequest {
  const restaurantId = stringField(body, "restaurantId", /^[A-Za-z0-9._:-]{1,64}$/);
  const paymentMethod = stringField(body, "paymentMethod", /^[A-Za-z0-9._:-]{1,64}$/);
  const items = body.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > 50) {
    throw new EdgeError("bad_request", "items must be a list of 1 to 50 items");
  }
  const parsedItems = items.map((item: unknown) => {
    const { menuItemId, quantity } = (item ?? {}) as Record<string, unknown>;
    if (typeof menuItemId !== "string" || !/^[A-Za-z0-9._:-]{1,64}$/.test(menuItemId)) {
      throw new EdgeError("bad_request", "each item needs a menuItemId");
    }
    if (
      typeof quantity !== "number" ||
      !Number.isInteger(quantity) ||
      quantity < 1 ||
      quantity > 99
    ) {
      throw new EdgeError("bad_request", "each item needs a quantity from 1 to 99");
    }
    return { menuItemId, quantity };
  });
  const { lat, lng } = (body.dropoff ?? {}) as Record<string, unknown>;
  if (typeof lat !== "number" || typeof lng !== "number" || !isValidLatLng(lat, lng)) {
    throw new EdgeError("bad_request", "dropoff must be {lat, lng}");
  }
  return { restaurantId, items: parsedItems, dropoff: { lat, lng }, paymentMethod };
}

/** The order service's 201 body, checked before it becomes a tracking record. */
function parseCreatedOrder(value: unknown, customerId: string): OrderRecord {
  const order = value as Record<string, unknown> & {
    pickup?: { lat?: unknown; lng?: unknown };
    dropoff?: { lat?: unknown; lng?: unknown };
  };
  const point = (p: { lat?: unknown; lng?: unknown } | undefined) =>
    typeof p?.lat === "number" && typeof p.lng === "number" && isValidLatLng(p.lat, p.lng)
      ? { lat: p.lat, lng: p.lng }
      : undefined;
  const pickup = point(order?.pickup);
  const dropoff = point(order?.dropoff);
  if (
    typeof order?.id !== "string" ||
    !isKeyPart(order.id) ||
    typeof order.city !== "string" ||
    typeof order.restaurantId !== "string" ||
    !pickup ||
    !dropoff
  ) {
    throw new EdgeError("upstream_failed", "the order service answered an unexpected body");
  }
  return {
    orderId: order.id,
    customerId,
    city: order.city,
    restaurantId: order.restaurantId,
    pickup,
    dropoff,
    status: "CONFIRMED",
    version: 1,
  };
}

/**
 * `POST /v1/orders`, idempotent by `Idempotency-Key` per customer: the same
 * key and body replays the stored answer (`Idempotent-Replayed: true`), the
 * same key with another body is 422, while the first is in flight 409 with
 * Retry-After. The in-flight claim is a lease of the upstream timeout plus
 * `leaseMarginMs`, renewed while the call runs, so after a crash the key is
 * free again within seconds; the retry then reaches the order service with
 * the same `<customer>:<key>`, and the service replays the order it made.
 * An upstream 5xx, timeout or network failure is not stored, so a retry
 * runs again. On success the order's tracking record is written once.
 */
export function orderRoutes(options: {
  connection: RedisConnection;
  orders: UpstreamService;
  upstreamTimeoutMs: number;
  leaseMarginMs: number;
}) {
  const { connection, orders } = options;
  const { client } = connection;
  const leaseMs = options.upstreamTimeoutMs + options.leaseMarginMs;

  /** Renews the claim's lease until stopped; losing it only costs a log line (the service dedupes). */
  function holdLease(claim: IdempotencyClaim, logger: Logger): () => void {
    const timer = setInterval(() => {
      renewIdempotent(client, claim, leaseMs).then(
        (held) => held || logger.warn("idempotency lease lost while the order call ran"),
        (error: unknown) => logger.warn({ err: error }, "idempotency lease not renewed"),
      );
    }, leaseMs / RENEWALS_PER_LEASE);
    return () => clearInterval(timer);
  }

  /** What the order service said: a new (or replayed) order, or a refusal to store and replay. */
  function acceptOrderAnswer(customerId: string) {
    return function accept({ status, body }: UpstreamAnswer): CreateOutcome {
      if (status === 201) {
        const total = (body as { total?: unknown } | undefined)?.total;
        return {
          kind: "created",
          order: parseCreatedOrder(body, customerId),
          ...(typeof total === "number" ? { total } : {}),
        };
      }
      if (status === 409)
        throw new EdgeError(
          "idempotency_in_flight",
          "the order service is still placing an order with this Idempotency-Key",
          { retryAfterSeconds: 1 },
        );
      if (status >= 400 && status < 500) {
        const reason = (body as { error?: unknown } | undefined)?.error;
        return {
          kind: "refused",
          message: typeof reason === "string" ? reason : "the order service refused the order",
        };
      }
      throw new EdgeError("upstream_failed", `the order service answered ${status}`);
    };
  }

  return new Hono<GatewayEnv>().post("/v1/orders", requireRole("customer"), async (c) => {
    const key = c.req.header("idempotency-key");
    if (!key || !IDEMPOTENCY_KEY.test(key)) {
      throw new EdgeError(
        "bad_request",
        "Idempotency-Key header required (8-128 of A-Z a-z 0-9 _ -)",
      );
    }
    const request = parseOrderRequest(await readJsonObject(c));
    const customerId = c.get("identity").sub;
    const requestHash = createHash("sha256").update(JSON.stringify(request)).digest("hex");
    const claim = { customerId, key, requestHash, owner: crypto.randomUUID() };
    const start = await beginIdempotent(client, claim, leaseMs);
    if (start.kind === "mismatch")
      throw new EdgeError(
        "idempotency_mismatch",
        "this Idempotency-Key was used with another body",
      );
    if (start.kind === "in_flight") {
      c.header("Retry-After", String(Math.max(1, Math.ceil(start.leaseLeftMs / 1000))));
      throw new EdgeError(
        "idempotency_in_flight",
        "a request with this Idempotency-Key is in flight",
      );
    }
    if (start.kind === "replay") {
      c.header("Idempotent-Replayed", "true");
      return c.body(start.body, start.status as ContentfulStatusCode, {
        "content-type": "application/json",
      });
    }

    let stored: { status: number; body: string };
    const releaseLease = holdLease(claim, c.get("logger"));
    try {
      const outcome = await orders.call(
        "/orders",
        {
          method: "POST",
          requestId: c.get("requestId"),
          // The key goes upstream too: after a crash or timeout here the order service may
          // have made the order, and only it can then hand the same order to the retry.
          headers: {
            "content-type": "application/json",
            "idempotency-key": `${customerId}:${key}`,
          },
          body: JSON.stringify({ customerId, ...request }),
        },
        acceptOrderAnswer(customerId),
      );
      if (outcome.kind === "created") {
        const { order, total } = outcome;
        await createOrderRecord(connection, order);
        const body = {
          id: order.orderId,
          customerId,
          restaurantId: order.restaurantId,
          city: order.city,
          pickup: order.pickup,
          dropoff: order.dropoff,
          status: "CONFIRMED",
          total,
        };
        stored = { status: 201, body: JSON.stringify(body) };
      } else {
        stored = {
          status: 422,
          body: JSON.stringify(
            errorBody(new EdgeError("order_rejected", outcome.message), c.get("requestId")),
          ),
        };
      }
    } catch (error) {
      // Not stored: the same key may be retried.
      await finishIdempotent(connection, claim, { status: 0, body: "", keepMs: 0 });
      throw error;
    } finally {
      releaseLease();
    }
    await finishIdempotent(connection, claim, { ...stored, keepMs: REPLAY_FOR_MS });
    return c.body(stored.body, stored.status as ContentfulStatusCode, {
      "content-type": "application/json",
    });
  });
}
