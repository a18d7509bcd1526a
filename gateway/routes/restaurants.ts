import { createHash } from "node:crypto";
import { Hono } from "hono";
import geohash from "ngeohash";
import { EdgeError } from "../../core/errors/edge-error";
import { keys } from "../../core/redis/keys";
import type { RedisClient } from "../../core/redis/scripts";
import { mountRoute, storedJson } from "../api/api-router";
import {
  menu,
  restaurantMenuRoute,
  searchRestaurantsRoute,
  searchResult,
} from "../api/restaurant-api";
import type { GatewayEnv } from "../context";
import { requestLogger } from "../middleware/observe-requests";
import type { UpstreamAnswer, UpstreamService } from "../upstream-service";

/** Case, spacing and word order do not change what a customer is looking for. */
export function normaliseQuery(q: string): string {
  return q.toLowerCase().split(/\s+/).filter(Boolean).sort().join(" ").slice(0, 100);
}

/** Failures a stale answer may stand in for: the service's, never the caller's. */
const STALE_FOR = new Set(["upstream_failed", "upstream_timeout", "upstream_unavailable"]);

/** A 200 in the documented search shape, as JSON text; anything else 502. */
function acceptSearch({ status, body }: UpstreamAnswer): string {
  if (status !== 200)
    throw new EdgeError("upstream_failed", `the search service refused (${status})`);
  if (!searchResult.safeParse(body).success)
    throw new EdgeError("upstream_failed", "the search service answered an unexpected body");
  return JSON.stringify(body);
}

/** A 200 in the documented menu shape, or 404; anything else 502. */
function acceptMenu({ status, body }: UpstreamAnswer) {
  if (status === 404) throw new EdgeError("not_found", "no such restaurant");
  if (status !== 200)
    throw new EdgeError("upstream_failed", `the menu service refused (${status})`);
  const answer = menu.safeParse(body);
  if (!answer.success)
    throw new EdgeError("upstream_failed", "the menu service answered an unexpected body");
  return answer.data;
}

/**
 * Restaurant search through a Redis cache keyed by the geohash-5 cell
 * (~5 km) and the normalised query: fresh for `cacheSeconds`, then kept
 * `staleIfErrorSeconds` longer to stand in when the search service fails or
 * its breaker is open (`X-Cache: stale` with `Age`). Concurrent misses for
 * one key on this node share a single upstream call; the upstream is asked
 * about the cell's centre so every member of the cell gets the same answer.
 * Only well-formed answers are cached. The menu is proxied once checked.
 */
export function restaurantRoutes(options: {
  client: RedisClient;
  search: UpstreamService;
  cacheSeconds: number;
  staleIfErrorSeconds: number;
  now?: () => number;
}) {
  const { client, search, cacheSeconds, staleIfErrorSeconds, now = Date.now } = options;
  const inFlight = new Map<string, Promise<string>>();

  async function fetchAndCache(
    key: string,
    cell: string,
    query: string,
    requestId: string,
  ): Promise<string> {
    const { latitude, longitude } = geohash.decode(cell);
    const path = `/restaurants?lat=${latitude}&lng=${longitude}&q=${encodeURIComponent(query)}`;
    const body = await search.call(path, { requestId }, acceptSearch);
    await client
      .multi()
      .hset(key, "at", now(), "body", body)
      .expire(key, cacheSeconds + staleIfErrorSeconds)
      .exec();
    return body;
  }

  const app = new Hono<GatewayEnv>();
  mountRoute(app, searchRestaurantsRoute, async (c) => {
    const { lat, lng, q = "" } = c.req.valid("query");
    const query = normaliseQuery(q);
    const cell = geohash.encode(lat, lng, 5);
    const key = keys.searchCache(cell, createHash("sha1").update(query).digest("hex").slice(0, 16));
    const [at, cached = null] = await client.hmget(key, "at", "body");
    const ageMs = now() - Number(at);
    if (cached !== null && ageMs < cacheSeconds * 1000) {
      c.header("X-Cache", "hit");
      return storedJson(c, cached, 200);
    }
    let pending = inFlight.get(key);
    if (!pending) {
      pending = fetchAndCache(key, cell, query, c.get("requestId")).finally(() =>
        inFlight.delete(key),
      );
      inFlight.set(key, pending);
    }
    try {
      const body = await pending;
      c.header("X-Cache", "miss");
      return storedJson(c, body, 200);
    } catch (error) {
      const stale = error instanceof EdgeError && STALE_FOR.has(error.code);
      if (!stale || cached === null || ageMs > (cacheSeconds + staleIfErrorSeconds) * 1000)
        throw error;
      requestLogger(c).warn({ err: error, ageMs }, "search served stale: the service failed");
      c.header("X-Cache", "stale");
      c.header("Age", String(Math.floor(ageMs / 1000)));
      return storedJson(c, cached, 200);
    }
  });
  return mountRoute(app, restaurantMenuRoute, async (c) => {
    const { id } = c.req.valid("param");
    const answer = await search.call(
      `/restaurants/${id}/menu`,
      { requestId: c.get("requestId") },
      acceptMenu,
    );
    return c.json(answer, 200);
  });
}
