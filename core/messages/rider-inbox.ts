import type { LatLng } from "../geo";

/**
 * Messages on a rider's `rider:{r}:inbox` channel, read by whichever ingest
 * node holds that rider's stream.
 */
export type RiderInboxMessage =
  | {
      type: "offer";
      orderId: string;
      fencingToken: string;
      restaurantId: string;
      pickup: LatLng;
      dropoff: LatLng;
      expiresAtMs: number;
    }
  /** The rider's active orders changed: reload them before the next publish. */
  | { type: "orders-changed" }
  /**
   * A StreamPings of the rider opened on some ingest node, with the
   * generation it drew (`rider:{r}:stream`): any of the rider's streams
   * with a lower one is superseded.
   */
  | { type: "stream-opened"; generation: number };

export type OfferMessage = Extract<RiderInboxMessage, { type: "offer" }>;

/** The offer pushed to a rider: its order's record, the fencing token and when the offer expires. */
export function offerMessage(
  order: { orderId: string; restaurantId: string; pickup: LatLng; dropoff: LatLng },
  offer: { fencingToken: string; expiresAtMs: number },
): OfferMessage {
  const { orderId, restaurantId, pickup, dropoff } = order;
  const { fencingToken, expiresAtMs } = offer;
  return { type: "offer", orderId, fencingToken, restaurantId, pickup, dropoff, expiresAtMs };
}

/**
 * A fencing token's parts: `{orderId}:{seq}` (create-offer.lua), `seq` from
 * the city's counter, so a later offer in a city has a higher one.
 * Undefined for anything else.
 */
export function parseFencingToken(token: string): { orderId: string; seq: number } | undefined {
  const colon = token.lastIndexOf(":");
  const seq = Number(token.slice(colon + 1));
  if (colon <= 0 || !Number.isSafeInteger(seq) || seq <= 0) return undefined;
  return { orderId: token.slice(0, colon), seq };
}

export function encodeRiderInboxMessage(message: RiderInboxMessage): string {
  return JSON.stringify(message);
}

/** Parses an inbox payload; undefined for anything malformed (never throws). */
export function parseRiderInboxMessage(payload: string): RiderInboxMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const message = value as Record<string, unknown>;
  if (message.type === "orders-changed") return { type: "orders-changed" };
  if (message.type === "stream-opened" && Number.isSafeInteger(message.generation))
    return { type: "stream-opened", generation: message.generation as number };
  if (
    message.type === "offer" &&
    typeof message.orderId === "string" &&
    typeof message.fencingToken === "string" &&
    parseFencingToken(message.fencingToken) !== undefined &&
    typeof message.restaurantId === "string" &&
    typeof message.expiresAtMs === "number" &&
    isLatLng(message.pickup) &&
    isLatLng(message.dropoff)
  ) {
    const { orderId, fencingToken, restaurantId, pickup, dropoff, expiresAtMs } = message;
    return offerMessage({ orderId, restaurantId, pickup, dropoff }, { fencingToken, expiresAtMs });
  }
  return undefined;
}

function isLatLng(value: unknown): value is LatLng {
  const point = value as LatLng | null;
  return typeof point?.lat === "number" && typeof point.lng === "number";
}
