import type { LatLng } from "../../core/geo";
import { type NodeStats, readNodeStats } from "../../core/observability/node-stats";
import { isOrderStatus, type OrderStatus } from "../../core/order-status";
import type { RedisConnection } from "../../core/redis/client";
import { keys } from "../../core/redis/keys";
import { readOrderRecord } from "../../core/redis/order-record";
import type { TrackingRing } from "../../core/tracking-ring/tracking-ring";

export interface LiveRider {
  riderId: string;
  lat: number;
  lng: number;
  seenAt: number;
  orderIds: string[];
}

export interface LiveOrder {
  orderId: string;
  riderId?: string;
  status: OrderStatus;
  version: number;
  pickup: LatLng;
  dropoff: LatLng;
  /** The tracking node that owns the order (where its watchers connect). */
  node?: { id: string; url: string };
}

/** What the live map draws for one city, and the deployment's live figures. */
export interface LiveView {
  city: string;
  cities: string[];
  at: number;
  riders: LiveRider[];
  orders: LiveOrder[];
  nodes: NodeStats[];
  totals: { pingsPerSecond: number; sockets: number; fanoutP99Ms?: number };
}

/** The map draws at most this many riders and orders per city. */
export const LIVE_VIEW_LIMITS = { riders: 2_000, orders: 200 } as const;

/**
 * Reads one city's fresh riders (positions from the geo set, active orders
 * from each rider's set), their orders' tracking records with each order's
 * owning node, and every node's reported figures. Reads only: it is polled.
 */
export async function readLiveView(options: {
  connection: RedisConnection;
  ring: TrackingRing;
  city: string;
  freshForMs: number;
  now: number;
}): Promise<LiveView> {
  const { connection, ring, city, freshForMs, now } = options;
  const { client } = connection;
  const [cities, seen, nodes] = await Promise.all([
    client.smembers(keys.cities()),
    client.zrangebyscore(
      keys.cityRidersSeen(city),
      now - freshForMs,
      "+inf",
      "WITHSCORES",
      "LIMIT",
      0,
      LIVE_VIEW_LIMITS.riders,
    ),
    readNodeStats(connection, now),
  ]);
  const riderIds: string[] = [];
  const seenAt: number[] = [];
  for (let i = 0; i + 1 < seen.length; i += 2) {
    riderIds.push(seen[i] as string);
    seenAt.push(Number(seen[i + 1]));
  }
  const [positions, orderSets] = await Promise.all([
    riderIds.length > 0 ? client.geopos(keys.cityRiders(city), ...riderIds) : [],
    // One command per rider: their sets live on different cluster slots.
    Promise.all(riderIds.map((riderId) => client.smembers(keys.riderOrders(riderId)))),
  ]);
  const riders: LiveRider[] = [];
  riderIds.forEach((riderId, index) => {
    const position = positions[index] as [string, string] | null | undefined;
    if (!position) return;
    riders.push({
      riderId,
      lng: Number(position[0]),
      lat: Number(position[1]),
      seenAt: seenAt[index] ?? 0,
      orderIds: (orderSets[index] ?? []).sort(),
    });
  });

  const orderIds = riders.flatMap((rider) => rider.orderIds).slice(0, LIVE_VIEW_LIMITS.orders);
  const records = await Promise.all(orderIds.map((orderId) => readOrderRecord(client, orderId)));
  const orders = records.flatMap((record): LiveOrder[] => {
    if (!record || !isOrderStatus(record.status)) return [];
    const owner = ring.ownerOf(record.orderId);
    return [
      {
        orderId: record.orderId,
        ...(record.riderId ? { riderId: record.riderId } : {}),
        status: record.status,
        version: record.version,
        pickup: record.pickup,
        dropoff: record.dropoff,
        ...(owner ? { node: { id: owner.id, url: owner.url } } : {}),
      },
    ];
  });
  return { city, cities: cities.sort(), at: now, riders, orders, nodes, totals: totalsOf(nodes) };
}

function totalsOf(nodes: readonly NodeStats[]): LiveView["totals"] {
  let pingsPerSecond = 0;
  let sockets = 0;
  let fanoutP99Ms: number | undefined;
  for (const { tier, figures } of nodes) {
    if (tier === "ingest") pingsPerSecond += figures.pingsPerSecond ?? 0;
    if (tier === "tracking") {
      sockets += figures.sockets ?? 0;
      const p99 = figures.fanoutP99Ms;
      // The deployment's p99 is at least its worst node's.
      if (p99 !== undefined) fanoutP99Ms = Math.max(fanoutP99Ms ?? 0, p99);
    }
  }
  return {
    pingsPerSecond: Math.round(pingsPerSecond * 10) / 10,
    sockets,
    ...(fanoutP99Ms === undefined ? {} : { fanoutP99Ms }),
  };
}
