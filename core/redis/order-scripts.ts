import { EdgeError } from "../errors/edge-error";
import type { ErrorCode } from "../errors/error-codes";
import type { GeofenceName } from "../messages/tracking-events";
import type { RiderVisibleStatus } from "../order-status";
import { notReplicated } from "./acked-writes";
import type { RedisConnection } from "./client";
import { keys } from "./keys";
import { releaseLease } from "./leases";

/** Turns a script's status into its result or the matching EdgeError. */
function expectOk(status: string, messages: Partial<Record<ErrorCode, string>>): void {
  if (status === "ok") return;
  const code = status as ErrorCode;
  const message = messages[code];
  throw message
    ? new EdgeError(code, message)
    : new EdgeError("internal", `unexpected script status ${status}`);
}

/** create-offer.lua: both locks with one fencing token `{orderId}:{seq}`, or 409 rider_busy / order_offered. */
export async function createOffer(
  connection: RedisConnection,
  offer: { city: string; riderId: string; orderId: string; ttlMs: number },
): Promise<string> {
  const { city, riderId, orderId, ttlMs } = offer;
  const [status, token] = (await connection.client.createOffer(
    keys.offerForRider(city, riderId),
    keys.offerForOrder(city, orderId),
    keys.fence(city),
    orderId,
    ttlMs,
  )) as [string, string];
  expectOk(status, {
    rider_busy: "the rider has a pending offer",
    order_offered: "the order has a pending offer",
  });
  return token;
}

/** An offer as its rider answers it: the rider from the caller's token, the city from it too. */
export interface RiderOffer {
  readonly city: string;
  readonly riderId: string;
  readonly orderId: string;
  readonly token: string;
}

/** The accepting marker's value: which rider's accept, of which offer. */
const acceptingHolder = (riderId: string, token: string) => `${riderId} ${token}`;

/**
 * take-offer.lua: compare-and-delete of both locks by the rider's own key,
 * "taken", or 409 offer_expired. With `acceptingMs` (an accept) taking them
 * also sets the accepting marker for that long, and an accept that finds
 * them gone but the marker its own (same rider, same token: its first
 * accept is under way) gets "accepting".
 */
export async function takeOffer(
  connection: RedisConnection,
  offer: RiderOffer,
  acceptingMs = 0,
): Promise<"taken" | "accepting"> {
  const { city, riderId, orderId, token } = offer;
  const status = (await connection.client.takeOffer(
    keys.offerForRider(city, riderId),
    keys.offerForOrder(city, orderId),
    keys.offerAccepting(city, orderId),
    token,
    acceptingHolder(riderId, token),
    acceptingMs,
  )) as string;
  if (status === "accepting") return status;
  expectOk(status, { offer_expired: "the offer expired, was replaced or is not yours" });
  return "taken";
}

/**
 * Deletes the accepting marker takeOffer set, once the accept's assignment
 * settled (the order record tells its retries the rest); only this accept's
 * (release-lease.lua): a later offer's accept of the order may have its own.
 */
export async function releaseAcceptingMarker(
  connection: RedisConnection,
  offer: RiderOffer,
): Promise<void> {
  const { city, riderId, orderId, token } = offer;
  await releaseLease(
    connection.client,
    keys.offerAccepting(city, orderId),
    acceptingHolder(riderId, token),
  );
}

/**
 * assign-rider.lua: CONFIRMED → ASSIGNED with the status event; resolves to
 * the new version once the connection's required replicas have it.
 */
export async function assignRider(
  connection: RedisConnection,
  assignment: { orderId: string; riderId: string; token: string },
): Promise<number> {
  const { orderId, riderId, token } = assignment;
  const { result, replicated } = await connection.acked.run(keys.order(orderId), (target) =>
    target.assignRider(
      keys.order(orderId),
      keys.orderOutbox(orderId),
      riderId,
      token,
      connection.publishCommand,
      keys.orderTrack(orderId),
      orderId,
    ),
  );
  const [status, version] = result as [string, number];
  expectOk(status, {
    not_found: "no such order",
    illegal_transition: "the order is no longer waiting for a rider",
  });
  if (!replicated) throw notReplicated();
  return version;
}

/**
 * confirm-accepted-offer.lua, for an accept whose offer is spent: the
 * order's status and version while it is still this rider's by this token
 * and not ended (the accept was this rider's, and this is its retry), once
 * the connection's required replicas have the assignment; else 409
 * offer_expired, or 503 when no replica confirms it (the first answer may
 * not survive a failover yet).
 */
export async function confirmAcceptedOffer(
  connection: RedisConnection,
  accept: { orderId: string; riderId: string; token: string },
): Promise<{ status: RiderVisibleStatus; version: number }> {
  const { orderId, riderId, token } = accept;
  const { result, replicated } = await connection.acked.run(keys.order(orderId), (target) =>
    target.confirmAcceptedOffer(keys.order(orderId), riderId, token),
  );
  // The script answers "ok" only for ASSIGNED, READY or PICKED_UP.
  const [outcome, status, version] = result as [string, RiderVisibleStatus, number];
  expectOk(outcome, { offer_expired: "the offer expired, was replaced or is not yours" });
  if (!replicated) throw notReplicated();
  return { status, version };
}

/**
 * transition-order.lua: version CAS + legal-from check + status event, and
 * with `expireAfterMs` the record's expiry (set when the move ends the
 * order); resolves to the new version once the connection's required
 * replicas have it.
 */
export async function transitionOrder(
  connection: RedisConnection,
  change: {
    orderId: string;
    expectedVersion: number;
    to: string;
    legalFrom: readonly string[];
    expireAfterMs?: number;
  },
): Promise<{ version: number; riderId?: string }> {
  const { orderId, expectedVersion, to, legalFrom, expireAfterMs = 0 } = change;
  const { result, replicated } = await connection.acked.run(keys.order(orderId), (target) =>
    target.transitionOrder(
      keys.order(orderId),
      keys.orderOutbox(orderId),
      expectedVersion,
      to,
      connection.publishCommand,
      keys.orderTrack(orderId),
      orderId,
      expireAfterMs,
      ...legalFrom,
    ),
  );
  const [status, version, riderId] = result as [string, number, string];
  expectOk(status, {
    not_found: "no such order",
    stale_version: `the order changed (now version ${version})`,
    illegal_transition: `the order cannot move to ${to} from its current status`,
  });
  if (!replicated) throw notReplicated();
  return riderId ? { version, riderId } : { version };
}

export type GeofenceOutcome =
  | "recorded"
  | "status_changed"
  | "not_found"
  | "not_assigned"
  | "not_applicable"
  | "already_recorded";

/** record-geofence.lua: the crossing's event once per order and fence (and PICKED_UP when `autoStatus`). */
export async function recordGeofence(
  connection: RedisConnection,
  crossing: {
    orderId: string;
    riderId: string;
    fence: GeofenceName;
    atMs: number;
    autoStatus: boolean;
  },
): Promise<GeofenceOutcome> {
  const { orderId, riderId, fence, atMs, autoStatus } = crossing;
  const [outcome] = (await connection.client.recordGeofence(
    keys.order(orderId),
    keys.orderOutbox(orderId),
    orderId,
    riderId,
    fence,
    atMs,
    autoStatus ? "1" : "0",
    connection.publishCommand,
    keys.orderTrack(orderId),
  )) as [GeofenceOutcome, number];
  return outcome;
}
