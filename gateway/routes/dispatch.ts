import { Hono } from "hono";
import { orderNotFound } from "../../core/auth/order-access";
import { EdgeError } from "../../core/errors/edge-error";
import { encodeRiderInboxMessage, offerMessage } from "../../core/messages/rider-inbox";
import { orderEnded, type RiderVisibleStatus } from "../../core/order-status";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { type OrderRecord, readOrderRecord } from "../../core/redis/order-record";
import {
  assignRider,
  confirmAcceptedOffer,
  createOffer,
  type RiderOffer,
  releaseAcceptingMarker,
  takeOffer,
} from "../../core/redis/order-scripts";
import { mountRoute } from "../api/api-router";
import { answerOfferRoute, candidatesRoute, createOfferRoute } from "../api/dispatch-api";
import type { GatewayEnv } from "../context";
import { requireRole } from "../middleware/require-role";

/** What an accept's assignment may take beyond its replicas' WAITs: its round trips to Redis. */
const ACCEPT_ROUND_TRIPS_MS = 1_000;

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
 * A retry that comes while the first accept is still between the two
 * scripts finds the offer spent and the order not yet the rider's: the
 * accepting marker take-offer.lua leaves (same rider, same token) turns its
 * 409 into 503 with Retry-After until the assignment settles, when the
 * marker goes and the record answers (200 as the first, or the first's
 * failure). A marker left by a gateway that died lapses on its own.
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
  // The accepting marker outlives the accept's assignment at its slowest (its replicas' WAITs
  // and the round trips), so a retry is told to wait only while the first may still land.
  const acceptingMs = connection.acked.longestWaitMs + ACCEPT_ROUND_TRIPS_MS;

  async function loadOrder(orderId: string): Promise<OrderRecord> {
    const order = await readOrderRecord(client, orderId);
    if (!order) throw orderNotFound();
    return order;
  }

  /** The assignment of an offer this accept took; its accepting marker goes once it settled. */
  async function assignTaken(offer: RiderOffer): Promise<number> {
    try {
      return await assignRider(connection, offer);
    } finally {
      // Not deleted (Redis away): it lapses after acceptingMs, and retries read the record then.
      await releaseAcceptingMarker(connection, offer).catch(() => undefined);
    }
  }

  /**
   * An accept whose offer is spent: answered as the first while the order is
   * this rider's by this token (confirm-accepted-offer.lua); when it is not
   * (yet) and the first accept was under way as the offer was found spent,
   * 503: its assignment may still come, and a 409 would have the app drop it.
   */
  async function answerRetry(
    offer: RiderOffer,
    firstUnderWay: boolean,
  ): Promise<{ status: RiderVisibleStatus; version: number }> {
    try {
      return await confirmAcceptedOffer(connection, offer);
    } catch (error) {
      if (!firstUnderWay || !(error instanceof EdgeError) || error.code !== "offer_expired")
        throw error;
      throw new EdgeError(
        "unavailable",
        "this offer's first accept is still under way: retry the same accept",
      );
    }
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
    // The time left as the answer goes, for a dispatcher whose clock is not the server's.
    const expiresInMs = Math.max(0, expiresAtMs - now());
    return c.json({ orderId, riderId, fencingToken, expiresAtMs, expiresInMs }, 201);
  });
  return mountRoute(app, { ...answerOfferRoute, middleware: requireRole("rider") }, async (c) => {
    const { orderId } = c.req.valid("param");
    const { action, token } = c.req.valid("json");
    const rider = c.get("identity");
    if (!rider.city) throw new EdgeError("forbidden", "rider token without a city");
    const offer = { city: rider.city, riderId: rider.sub, orderId, token };
    if (action === "decline") {
      await takeOffer(connection, offer);
      return c.json({ orderId, declined: true as const }, 200);
    }
    const taken = await takeOffer(connection, offer, acceptingMs).catch((error: unknown) => {
      if (error instanceof EdgeError && error.code === "offer_expired") return "spent" as const;
      throw error;
    });
    const { status, version } =
      taken === "taken"
        ? { status: "ASSIGNED" as const, version: await assignTaken(offer) }
        : await answerRetry(offer, taken === "accepting");
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
