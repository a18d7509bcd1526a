import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { mintToken } from "../../core/auth/mint-token";
import {
  LocationIngestService,
  type RideOffer,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { DEMO_CITIES } from "./cities";
import { SimulatedRider } from "./simulated-rider";

export interface CityOptions {
  ingestUrl: string;
  jwtSecret: string;
  riders: number;
  logger: Logger;
  /** What each rider's app does with an offer from its stream. */
  onOffer?: (rider: SimulatedRider, riderToken: string, offer: RideOffer) => void;
  /** Seeded so a demo run looks the same each time. */
  seed?: number;
}

/** A small deterministic PRNG (mulberry32): repeatable routes without Math.random. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts `riders` simulated riders spread over the demo cities; abort to stop them all. */
export async function startSimulatedCity(options: CityOptions): Promise<{ stop(): Promise<void> }> {
  const { ingestUrl, jwtSecret, riders, logger, seed = 42 } = options;
  const random = seededRandom(seed);
  const controller = new AbortController();
  let errorsLogged = 0;
  const runs: Promise<void>[] = [];
  for (let i = 0; i < riders; i++) {
    const city = DEMO_CITIES[i % DEMO_CITIES.length];
    if (!city) continue;
    const riderId = `rider-${city.id}-${i}`;
    // A demo runs for days: each token (a day's) is replaced when the ingest ends the stream at its exp.
    const riderToken = () => mintToken(jwtSecret, { sub: riderId, role: "rider", city: city.id });
    const rider = new SimulatedRider({
      riderId,
      center: city.center,
      token: await riderToken(),
      refreshToken: riderToken,
      // Its own connection, as on a phone (the ingest allows a few streams per connection).
      client: createClient(LocationIngestService, createGrpcTransport({ baseUrl: ingestUrl })),
      random,
      // The job's gateway calls carry a token minted for it, not the first one (long expired by then).
      onOffer: (rider, offer) =>
        void riderToken().then((token) => options.onOffer?.(rider, token, offer)),
      onError: (error) => {
        // One line per rider problem is noise at a few hundred riders: log the first few.
        if (errorsLogged++ < 5)
          logger.warn({ err: error, riderId }, "simulated rider stream failed");
      },
    });
    runs.push(rider.run(controller.signal));
  }
  logger.info({ riders, cities: DEMO_CITIES.map((c) => c.id) }, "simulated city running");
  return {
    async stop() {
      controller.abort();
      await Promise.allSettled(runs);
    },
  };
}
