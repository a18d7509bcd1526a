import { Redis } from "ioredis";
import { keys } from "../../core/redis/keys";
import { startRedis } from "../../test/support/redis-server";

export interface GeoSearchBenchOptions {
  /** Riders in the city's geo set. */
  riders: number;
  /** Radius of the disc they are spread over, around the centre (m). */
  spreadM: number;
  /** Search radii to measure (m). */
  radiiM: number[];
  /** The COUNT the gateway asks for (its candidate limit × its over-fetch). */
  count: number;
  /** Searches per radius. */
  searches: number;
  progress: (line: string) => void;
}

export interface GeoSearchRow {
  radiusM: number;
  /** Riders inside the radius (what GEOSEARCH has to examine and sort, at least). */
  ridersInRadius: number;
  /** Redis CPU per search, from INFO commandstats (usec_per_call). */
  redisMicros: number;
  /** Searches per second that would take 10% of one Redis core. */
  searchesPerSecondAtTenthOfACore: number;
}

const CENTRE = { lat: 51.5074, lng: -0.1278 };
const METRES_PER_DEGREE_LAT = 111_320;

/**
 * The Redis cost of one dispatch candidate search (GEOSEARCH FROMLONLAT
 * BYRADIUS ASC COUNT WITHDIST, as the gateway sends it) against a city of
 * `riders` spread uniformly over a disc, for each radius. The cost grows
 * with the riders inside the searched box, not with COUNT: Redis examines
 * and sorts every member of the covering geohash cells.
 */
export async function runGeoSearchBench(options: GeoSearchBenchOptions): Promise<GeoSearchRow[]> {
  const { riders, spreadM, radiiM, count, searches, progress } = options;
  const redis = await startRedis();
  const db = new Redis(redis.url);
  try {
    const key = keys.cityRiders("bench-city");
    const cosLat = Math.cos((CENTRE.lat * Math.PI) / 180);
    for (let start = 0; start < riders; start += 5_000) {
      const pipeline = db.pipeline();
      for (let i = start; i < Math.min(riders, start + 5_000); i++) {
        // Uniform over the disc: radius ∝ sqrt(u).
        const r = spreadM * Math.sqrt(Math.random());
        const angle = Math.random() * 2 * Math.PI;
        const lat = CENTRE.lat + (r * Math.sin(angle)) / METRES_PER_DEGREE_LAT;
        const lng = CENTRE.lng + (r * Math.cos(angle)) / (METRES_PER_DEGREE_LAT * cosLat);
        pipeline.geoadd(key, lng, lat, `rider-${i}`);
      }
      await pipeline.exec();
    }
    progress(`geo: seeded ${riders} riders over a ${spreadM} m disc`);
    const rows: GeoSearchRow[] = [];
    for (const radiusM of radiiM) {
      const inRadius = (await db.geosearch(
        key,
        "FROMLONLAT",
        CENTRE.lng,
        CENTRE.lat,
        "BYRADIUS",
        radiusM,
        "m",
      )) as string[];
      await db.config("RESETSTAT");
      for (let i = 0; i < searches; i++) {
        await db.geosearch(
          key,
          "FROMLONLAT",
          CENTRE.lng,
          CENTRE.lat,
          "BYRADIUS",
          radiusM,
          "m",
          "ASC",
          "COUNT",
          count,
          "WITHDIST",
        );
      }
      const stats = await db.info("commandstats");
      const micros = Number(/cmdstat_geosearch:.*usec_per_call=([\d.]+)/.exec(stats)?.[1]);
      rows.push({
        radiusM,
        ridersInRadius: inRadius.length,
        redisMicros: micros,
        searchesPerSecondAtTenthOfACore: 100_000 / micros,
      });
      progress(`geo: ${radiusM} m → ${inRadius.length} riders, ${micros} µs per search`);
    }
    return rows;
  } finally {
    db.disconnect();
    await redis.stop();
  }
}
