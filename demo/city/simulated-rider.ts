import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { LatLng } from "../../core/geo";
import {
  type LocationIngestService,
  type RideOffer,
  type StreamPingsRequest,
  StreamPingsRequestSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { along, type Random, randomCorner, randomRoute } from "./street-grid";

export interface RiderOptions {
  riderId: string;
  center: LatLng;
  token: string;
  client: Client<typeof LocationIngestService>;
  random: Random;
  onOffer?: (offer: RideOffer) => void;
  onError?: (error: unknown) => void;
}

/**
 * A rider app: drives grid routes at scooter speed, parks between trips,
 * holds one StreamPings stream open and pings when the server's
 * `next_interval_ms` says so, reconnecting when told to or when the stream
 * breaks.
 */
export class SimulatedRider {
  readonly #options: RiderOptions;
  #seq = BigInt(Date.now()) * 1000n;
  #route: LatLng[];
  #routeStartedAt = Date.now();
  #parkedUntil = 0;
  #speedMps: number;
  #nextIntervalMs = 1_000;
  #wake: (() => void) | undefined;

  constructor(options: RiderOptions) {
    this.#options = options;
    const start = randomCorner(options.center, options.random);
    this.#route = randomRoute(options.center, start, options.random);
    this.#speedMps = 5 + options.random() * 4;
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const stopWaiting = () => this.#wake?.();
    signal.addEventListener("abort", stopWaiting);
    let backoffMs = 500;
    while (!signal.aborted) {
      const reconnectAfterMs = await this.#stream(signal).catch((error: unknown) => {
        if (!signal.aborted) this.#options.onError?.(error);
        backoffMs = Math.min(backoffMs * 2, 10_000);
        return backoffMs;
      });
      if (reconnectAfterMs === 0) backoffMs = 500;
      await this.#sleep(reconnectAfterMs, signal);
    }
    signal.removeEventListener("abort", stopWaiting);
  }

  /** One stream's life; resolves to how long to wait before the next. */
  async #stream(signal: AbortSignal): Promise<number> {
    const { client, token } = this.#options;
    let open = true;
    const stream = client.streamPings(
      this.#pings(signal, () => open),
      {
        headers: { authorization: `Bearer ${token}` },
        signal,
      },
    );
    try {
      for await (const response of stream) {
        const { event } = response;
        if (event.case === "ack") this.#nextIntervalMs = event.value.nextIntervalMs;
        if (event.case === "offer") this.#options.onOffer?.(event.value);
        if (event.case === "reconnect") return event.value.afterMs;
      }
      return 0;
    } finally {
      open = false;
      this.#wake?.();
    }
  }

  async *#pings(signal: AbortSignal, isOpen: () => boolean): AsyncGenerator<StreamPingsRequest> {
    while (!signal.aborted && isOpen()) {
      yield create(StreamPingsRequestSchema, { ping: this.#fix() });
      await this.#sleep(this.#nextIntervalMs, signal);
    }
  }

  #fix() {
    const now = Date.now();
    const { random, center } = this.#options;
    let speedMps = 0;
    let position: LatLng;
    let headingDeg = 0;
    if (now < this.#parkedUntil) {
      // Parked at the start of the next route (set when the last one ended).
      position = this.#route[0] as LatLng;
    } else {
      const meters = ((now - this.#routeStartedAt) / 1000) * this.#speedMps;
      const step = along(this.#route, meters);
      position = step.at;
      headingDeg = step.headingDeg;
      speedMps = this.#speedMps;
      if (step.done) {
        // Park for 20-60 s, then set off on a new route from here.
        this.#parkedUntil = now + 20_000 + random() * 40_000;
        this.#route = randomRoute(center, step.at, random);
        this.#routeStartedAt = this.#parkedUntil;
        speedMps = 0;
      }
    }
    this.#seq += 1n;
    return {
      lat: position.lat,
      lng: position.lng,
      accuracyM: 4 + random() * 8,
      speedMps,
      headingDeg,
      recordedAtMs: BigInt(now),
      seq: this.#seq,
    };
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
