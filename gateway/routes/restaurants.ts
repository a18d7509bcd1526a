import { createHash } from "node:crypto";
import { Hono } from "hono";
import geohash from "ngeohash";
import { EdgeError } from "../../core/errors/edge-error";
import { MAX_GEO_LATITUDE } from "../../core/geo";
import { keys } from "../../core/redis/keys";
import type { RedisClient } from "../../core/redis/scripts";
import type { GatewayEnv } from "../context";
import { numberParam } from "../request-body";
import { callUpstream } from "../upstream-call";

/** Case, spacing and word order do not change what a customer is looking for. */
export function normaliseQuery(q: string): string {
  return q.toLowerCase().split(/\s+/).filter(Boolean).sort().join(" ").slice(0, 100);
}

/**
 * Restaurant search through a Redis cache keyed by the geohash-5 cell
 * (~5 km) and the normalised query, for `cacheSeconds`. Concurrent misses
 * for one key on this node share a single upstream call; the upstream is
 * asked about the cell's centre so every member of the cell gets the same
 * answer. Failures are not cached. The menu is proxied as it is.
 */
export function restaurantRoutes(options: {
  client: RedisClient;
  searchServiceUrl: string;
  cacheSeconds: number;
  upstreamTimeoutMs: number;
}) {
  const { client, searchServiceUrl, cacheSeconds, upstreamTimeoutMs } = options;
  const inFlight = new Map<string, Promise<string>>();

  async function fetchAndCache(key: string, cell: string, query: string): Promise<string> {
    const { latitude, longitude } = geohash.decode(cell);
    const url = `${searchServiceUrl}/restaurants?lat=${latitude}&lng=${longitude}&q=${encodeURIComponent(query)}`;
    const response = await callUpstream(url, {}, upstreamTimeoutMs, "search service");
    if (!response.ok)
      throw new EdgeError("upstream_failed", `the search service refused (${response.status})`);
    const body = JSON.stringify(await response.json());
    await client.set(key, body, "EX", cacheSeconds);
    return body;
  }

  return new Hono<GatewayEnv>()
    .get("/v1/restaurants", async (c) => {
      const lat = numberParam(c, "lat", { min: -MAX_GEO_LATITUDE, max: MAX_GEO_LATITUDE });
      const lng = numberParam(c, "lng", { min: -180, max: 180 });
      const query = normaliseQuery(c.req.query("q") ?? "");
      const cell = geohash.encode(lat, lng, 5);
      const key = keys.searchCache(
        cell,
        createHash("sha1").update(query).digest("hex").slice(0, 16),
      );
      const cached = await client.get(key);
      if (cached !== null) {
        c.header("X-Cache", "hit");
        return c.body(cached, 200, { "content-type": "application/json" });
      }
      let pending = inFlight.get(key);
      if (!pending) {
        pending = fetchAndCache(key, cell, query).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      c.header("X-Cache", "miss");
      return c.body(await pending, 200, { "content-type": "application/json" });
    })
    .get("/v1/restaurants/:id/menu", async (c) => {
      const id = c.req.param("id");
      if (!/^[A-Za-z0-9._:-]{1,64}$/.test(id))
        throw new EdgeError("bad_request", "invalid restaurant id");
      const response = await callUpstream(
        `${searchServiceUrl}/restaurants/${id}/menu`,
        {},
        upstreamTimeoutMs,
        "menu service",
      );
      if (response.status === 404) throw new EdgeError("not_found", "no such restaurant");
      if (!response.ok)
        throw new EdgeError("upstream_failed", `the menu service refused (${response.status})`);
      return c.json(await response.json());
    });
}
