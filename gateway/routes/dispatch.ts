import { Hono } from "hono";
import { orderNotFound } from "../../core/auth/order-access";
import { EdgeError } from "../../core/errors/edge-error";
import { encodeRiderInboxMessage, offerMessage } from "../../core/messages/rider-inbox";
import { orderEnded } from "../../core/order-status";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { type OrderRecord, readOrderRecord } from "../../core/redis/order-record";
import {
  assignRider,
  confirmAcceptedOffer,
  createOffer,
  takeOffer,
} from "../../core/redis/order-scripts";
import { mountRoute } from "../api/api-router";
import { answerOfferRoute, candidatesRoute, createOfferRoute } from "../api/dispatch-api";
import type { GatewayEnv } from "../context";
import { requireRole } from "../middleware/require-role";

/**
 * Dispatch: nearest fresh riders without a pending offer; offers under a
 * rider lock and an order lock with a fencing token (create-offer.lua),
 * pushed down the rider's ingest stream; the rider's accept or decline
 * (take-offer.lua), and on accept the assignment (assign-rider.lua).
 *
 * Accepting takes two scripts, not one: the offer locks live on the city's
 * cluster slot and the order record on the order's, and a script may touch
 * one slot only. The locks are deleted first, so at most one accept per
 * offer reaches the assignment, which itself only moves a CONFIRMED order.
 * An accept whose offer is spent is the winner's retry (its answer lost,
 * or its gateway gone before the rider's active set was written) when the
 * order is still this rider's by this token and not ended
 * (confirm-accepted-offer.lua): it is answered with the order's status and
 * version, once a replica has the assignment (the first answer waited for
 * one too), and the active set written again. Not only while ASSIGNED: the
 * restaurant may mark the order READY before the app retries, and an order
 * missing from the set has its positions never published to the customer.
 */
export function dispatchRoutes(options: {
  connection: RedisConnection;
  /** A rider whose last ping is older than this is not a candidate. */
  freshForMs: number;
  /** Largest search radius (m) and `limit` accepted; 400 above (their cost is Redis CPU). */
  maxRadiusM: number;
  maxCount: number;
  now?: () => number;
}) {
  const { connection, freshForMs, maxRadiusM, maxCount, now = Date.now } = options;
  const { client } = connection;

  async function loadOrder(orderId: string): Promise<OrderRecord> {
    const order = await readOrderRecord(client, orderId);
    if (!order) throw orderNotFound();
    return order;
  }

  const dispatchOnly = requireRole("dispatcher", "ops");
  const app = new Hono<GatewayEnv>();
  const candidates = { ...candidatesRoute({ maxRadiusM, maxCount }), middleware: dispatchOnly };
  mountRoute(app, candidates, async (c) => {
    const { city, lat, lng, radiusM, limit } = c.req.valid("query");
    // Over-fetch: some of the nearest will be stale or busy.
    const nearest = (await client.geosearch(
      keys.cityRiders(city),
      "FROMLONLAT",
      lng,
      lat,
      "BYRADIUS",
      radiusM,
      "m",
      "ASC",
      "COUNT",
      limit * 3,
      "WITHDIST",
    )) as [string, string][];
    if (nearest.length === 0) return c.json({ candidates: [] }, 200);
    const ids = nearest.map(([riderId]) => riderId);
    const pipeline = client.pipeline();
    pipeline.zmscore(keys.cityRidersSeen(city), ...ids);
    for (const riderId of ids) pipeline.exists(keys.offerForRider(city, riderId));
    const [seenResult, ...busy] = (await pipeline.exec()) ?? [];
    const seen = (seenResult?.[1] ?? []) as (string | null)[];
    const freshAfter = now() - freshForMs;
    const chosen = nearest
      .map(([riderId, distance], index) => ({
        riderId,
        distanceM: Math.round(Number(distance)),
        lastSeenMs: Number(seen[index] ?? 0),
        offered: busy[index]?.[1] === 1,
      }))
      .filter((rider) => rider.lastSeenMs >= freshAfter && !rider.offered)
      .slice(0, limit);
    // Orders each rider already carries, so a dispatcher can prefer free riders or batch.
    // One command per rider: their sets live on other cluster slots than the city's.
    const carrying = await Promise.all(
      chosen.map(({ riderId }) => client.scard(keys.riderOrders(riderId))),
    );
    const candidates = chosen.map(({ riderId, distanceM, lastSeenMs }, index) => ({
      riderId,
      distanceM,
      lastSeenMs,
      activeOrders: carrying[index] ?? 0,
    }));
    return c.json({ candidates }, 200);
  });
  mountRoute(app, { ...createOfferRoute, middleware: dispatchOnly }, async (c) => {
    const { orderId, riderId, city, ttlMs } = c.req.valid("json");
    const order = await loadOrder(orderId);
    if (order.city !== city) throw new EdgeError("bad_request", "the order is in another city");
    if (order.status !== "CONFIRMED")
      throw new EdgeError("illegal_transition", "the order is not waiting for a rider");
    // Counted from before the locks are taken, so the rider is never told a later expiry than theirs.
    const expiresAtMs = now() + ttlMs;
    const fencingToken = await createOffer(connection, { city, riderId, orderId, ttlMs });
    await client[connection.publishCommand](
      keys.riderInbox(riderId),
      encodeRiderInboxMessage(offerMessage(order, { fencingToken, expiresAtMs })),
    );
    return c.json({ orderId, riderId, fencingToken, expiresAtMs }, 201);
  });
  return mountRoute(app, { ...answerOfferRoute, middleware: requireRole("rider") }, async (c) => {
    const { orderId } = c.req.valid("param");
    const { action, token } = c.req.valid("json");
    const rider = c.get("identity");
    if (!rider.city) throw new EdgeError("forbidden", "rider token without a city");
    const offer = { city: rider.city, riderId: rider.sub, orderId, token };
    const accept = { orderId, riderId: rider.sub, token };
    // When this is the retry of this rider's earlier accept of this offer: the order's status and version now.
    const acceptedBefore = await takeOffer(connection, offer).then(
      () => undefined,
      (error: unknown) => {
        const spent = error instanceof EdgeError && error.code === "offer_expired";
        if (!spent || action !== "accept") throw error;
        return confirmAcceptedOffer(connection, accept);
      },
    );
    if (action === "decline") return c.json({ orderId, declined: true as const }, 200);
    const { status, version } = acceptedBefore ?? {
      status: "ASSIGNED" as const,
      version: await assignRider(connection, accept),
    };
    await client.sadd(keys.riderOrders(rider.sub), orderId);
    // The set is on the rider's slot, the record on the order's: no script holds both. A cancel
    // between the assignment (or its confirmation) and the SADD took the order out of the set
    // before this put it back. Its SREM follows its status change, so the record read after the
    // SADD shows the cancel whenever the SADD came after that SREM.
    const record = await readOrderRecord(client, orderId);
    if (!record || record.riderId !== rider.sub || orderEnded(record.status))
      await client.srem(keys.riderOrders(rider.sub), orderId);
    await client[connection.publishCommand](
      keys.riderInbox(rider.sub),
      encodeRiderInboxMessage({ type: "orders-changed" }),
    );
    return c.json({ orderId, status, version, riderId: rider.sub }, 200);
  });
}
