import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { LatLng } from "../../core/geo";
import {
  type LocationIngestService,
  type RideOffer,
  type StreamPingsRequest,
  StreamPingsRequestSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { along, type Random, randomCorner, randomRoute, routeTo } from "./street-grid";

/** What the rider app does at each end of a delivery (the calls to the gateway). */
export interface JobHooks {
  /** Resolves when the food can be taken (READY); rejects to give the job up. */
  atPickup(): Promise<void>;
  /** The hand-over at the door (DELIVERED). */
  atDropoff(): Promise<void>;
}

interface Job {
  readonly pickup: LatLng;
  readonly dropoff: LatLng;
  readonly hooks: JobHooks;
  leg: "to_pickup" | "at_pickup" | "to_dropoff" | "at_dropoff";
}

export interface RiderOptions {
  riderId: string;
  center: LatLng;
  token: string;
  client: Client<typeof LocationIngestService>;
  random: Random;
  onOffer?: (rider: SimulatedRider, offer: RideOffer) => void;
  onError?: (error: unknown) => void;
}

/**
 * A rider app: drives grid routes at scooter speed, parks between trips,
 * holds one StreamPings stream open and pings when the server's
 * `next_interval_ms` says so, reconnecting when told to or when the stream
 * breaks. With a job it drives to the pickup, waits for the food, drives to
 * the drop-off and hands it over, then roams again.
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
  #job: Job | undefined;
  #reserved = false;

  constructor(options: RiderOptions) {
    this.#options = options;
    const start = randomCorner(options.center, options.random);
    this.#route = randomRoute(options.center, start, options.random);
    this.#speedMps = 5 + options.random() * 4;
  }

  /** Holds the rider for one job while its offer is answered; false when already taken. */
  reserve(): boolean {
    if (this.#reserved || this.#job) return false;
    this.#reserved = true;
    return true;
  }

  /** The reserved job fell through (the accept was refused). */
  release(): void {
    this.#reserved = false;
  }

  /** Sets off for the pickup from wherever the rider is now (after `reserve`). */
  startJob(job: { pickup: LatLng; dropoff: LatLng }, hooks: JobHooks): void {
    if (!this.#reserved || this.#job) throw new Error("startJob without a reservation");
    this.#reserved = false;
    const from = this.#positionAt(Date.now());
    this.#job = { ...job, hooks, leg: "to_pickup" };
    // On a job the rider hurries (8-12 m/s instead of 5-9).
    this.#speedMps += 3;
    this.#setOff(routeTo(from, job.pickup, this.#options.random));
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
        if (event.case === "offer") this.#options.onOffer?.(this, event.value);
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
    const { random } = this.#options;
    let speedMps = 0;
    let position: LatLng;
    let headingDeg = 0;
    if (now < this.#parkedUntil) {
      // Parked at the start of the next route.
      position = this.#route[0] as LatLng;
    } else {
      const meters = ((now - this.#routeStartedAt) / 1000) * this.#speedMps;
      const step = along(this.#route, meters);
      position = step.at;
      headingDeg = step.headingDeg;
      speedMps = this.#speedMps;
      if (step.done) {
        speedMps = 0;
        this.#arrived(step.at, now);
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

  /** At a route's end: the next leg of the job, or a rest and a new random route. */
  #arrived(at: LatLng, now: number): void {
    const job = this.#job;
    const { random, center } = this.#options;
    if (job?.leg === "to_pickup" || job?.leg === "to_dropoff") {
      const atPickup = job.leg === "to_pickup";
      job.leg = atPickup ? "at_pickup" : "at_dropoff";
      this.#park(at, Number.POSITIVE_INFINITY);
      const done = atPickup ? job.hooks.atPickup() : job.hooks.atDropoff();
      done.then(
        () => {
          if (atPickup) {
            job.leg = "to_dropoff";
            this.#setOff(routeTo(at, job.dropoff, random));
          } else this.#endJob(at);
        },
        () => this.#endJob(at),
      );
      return;
    }
    if (job) return;
    // Rest for 20-60 s, then set off on a new route from here.
    this.#park(at, now + 20_000 + random() * 40_000);
    this.#route = randomRoute(center, at, random);
    this.#routeStartedAt = this.#parkedUntil;
  }

  #endJob(at: LatLng): void {
    this.#job = undefined;
    this.#speedMps -= 3;
    this.#park(at, Date.now() + 5_000);
    this.#route = randomRoute(this.#options.center, at, this.#options.random);
    this.#routeStartedAt = this.#parkedUntil;
  }

  #park(at: LatLng, until: number): void {
    this.#route = [at];
    this.#parkedUntil = until;
  }

  /** Follows `route` from now, and pings at once so the server sees the rider move off. */
  #setOff(route: LatLng[]): void {
    this.#route = route;
    this.#routeStartedAt = Date.now();
    this.#parkedUntil = 0;
    this.#wake?.();
  }

  #positionAt(now: number): LatLng {
    if (now < this.#parkedUntil) return this.#route[0] as LatLng;
    return along(this.#route, ((now - this.#routeStartedAt) / 1000) * this.#speedMps).at;
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
