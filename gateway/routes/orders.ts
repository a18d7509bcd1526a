import { createHash } from "node:crypto";
import { z } from "@hono/zod-openapi";
import { Hono } from "hono";
import type { Logger } from "pino";
import { EdgeError } from "../../core/errors/edge-error";
import { type ErrorBody, errorBody } from "../../core/errors/error-response";
import type { RedisConnection } from "../../core/redis/client";
import {
  beginIdempotent,
  finishIdempotent,
  type IdempotencyClaim,
  renewIdempotent,
} from "../../core/redis/idempotency-scripts";
import { KEY_PART } from "../../core/redis/keys";
import { createOrderRecord, type OrderRecord } from "../../core/redis/order-record";
import { mountRoute, storedJson } from "../api/api-router";
import { latLng } from "../api/field-rules";
import { createOrderRoute } from "../api/order-api";
import type { GatewayEnv } from "../context";
import type { IdempotencyOutcome } from "../metrics";
import { requestLogger } from "../middleware/observe-requests";
import { requireRole } from "../middleware/require-role";
import type { UpstreamAnswer, UpstreamService } from "../upstream-service";

const REPLAY_FOR_MS = 24 * 3_600_000;
/** Renewals per lease: two may fail (a Redis blip) before the lease runs out. */
const RENEWALS_PER_LEASE = 3;

/**
 * The one message of a 422 `order_rejected`: the contract names no reasons,
 * and the service's own text (names, ids, internals, customer details) is not
 * the edge's to pass on, nor to log: the log gets its status and short code.
 */
export const ORDER_REJECTED_MESSAGE = "the order service refused the order";
/** A refusal code worth logging: one short snake_case word, so it cannot carry a customer's details. */
const SHORT_CODE = /^[a-z][a-z0-9_]{0,39}$/;

/**
 * A stored `order_rejected` with the fixed message: answers stored before the
 * message was fixed carry the service's own text and replay for a day.
 */
function fixedRefusal(stored: string): string {
  const parsed = JSON.parse(stored) as Partial<ErrorBody>;
  if (parsed.error?.code !== "order_rejected" || parsed.error.message === ORDER_REJECTED_MESSAGE)
    return stored;
  return JSON.stringify({ error: { ...parsed.error, message: ORDER_REJECTED_MESSAGE } });
}

type CreateOutcome = { kind: "created"; order: OrderRecord; total?: number } | { kind: "refused" };

/** What the order service's 201 must carry before it becomes a tracking record (a total that is not a number is dropped). */
const serviceOrder = z.object({
  id: z.string().regex(KEY_PART),
  city: z.string(),
  restaurantId: z.string(),
  pickup: latLng,
  dropoff: latLng,
  total: z.number().optional().catch(undefined),
});

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
  /** Told what each request's Idempotency-Key found (a metric). */
  onIdempotency?: (outcome: IdempotencyOutcome) => void;
}) {
  const { connection, orders, onIdempotency } = options;
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
  function acceptOrderAnswer(customerId: string, logger: Logger) {
    return function accept({ status, body }: UpstreamAnswer): CreateOutcome {
      if (status === 201) {
        const answer = serviceOrder.safeParse(body);
        if (!answer.success)
          throw new EdgeError("upstream_failed", "the order service answered an unexpected body");
        const { id, city, restaurantId, pickup, dropoff, total } = answer.data;
        const order: OrderRecord = {
          orderId: id,
          customerId,
          city,
          restaurantId,
          pickup,
          dropoff,
          status: "CONFIRMED",
          version: 1,
        };
        return { kind: "created", order, ...(total === undefined ? {} : { total }) };
      }
      if (status === 409)
        throw new EdgeError(
          "idempotency_in_flight",
          "the order service is still placing an order with this Idempotency-Key",
          { retryAfterSeconds: 1 },
        );
      if (status >= 400 && status < 500) {
        // STYLE: never log bodies. The refusal's text may name the customer; its code may not.
        const code = (body as { code?: unknown } | undefined)?.code;
        logger.info(
          {
            upstreamStatus: status,
            upstreamCode: typeof code === "string" && SHORT_CODE.test(code) ? code : undefined,
          },
          "the order service refused the order",
        );
        return { kind: "refused" };
      }
      throw new EdgeError("upstream_failed", `the order service answered ${status}`);
    };
  }

  const customerOnly = { ...createOrderRoute, middleware: requireRole("customer") };
  return mountRoute(new Hono<GatewayEnv>(), customerOnly, async (c) => {
    const key = c.req.valid("header")["Idempotency-Key"];
    // Only what the order service needs: the schema dropped client prices, totals and the like.
    const request = c.req.valid("json");
    const customerId = c.get("identity").sub;
    const requestHash = createHash("sha256").update(JSON.stringify(request)).digest("hex");
    const claim = { customerId, key, requestHash, owner: crypto.randomUUID() };
    const start = await beginIdempotent(client, claim, leaseMs);
    onIdempotency?.(
      start.kind === "started" ? "claimed" : start.kind === "replay" ? "replayed" : start.kind,
    );
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
      // The one stored refusal (422 order_rejected): its code goes on the access log line.
      if (start.status >= 400) c.set("errorCode", "order_rejected");
      return storedJson(c, fixedRefusal(start.body), start.status);
    }

    let stored: { status: number; body: string };
    const logger = requestLogger(c);
    const releaseLease = holdLease(claim, logger);
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
        acceptOrderAnswer(customerId, logger),
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
        c.set("errorCode", "order_rejected");
        stored = {
          status: 422,
          body: JSON.stringify(
            errorBody(new EdgeError("order_rejected", ORDER_REJECTED_MESSAGE), c.get("requestId")),
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
    return storedJson(c, stored.body, stored.status);
  });
}
