import type { Client } from "@connectrpc/connect";
import type { Fix } from "../../clients/rider-client/fix-source";
import { RiderClient } from "../../clients/rider-client/rider-client";
import { MemorySeqStore } from "../../clients/rider-client/seq-store";
import type { LatLng } from "../../core/geo";
import type {
  LocationIngestService,
  RideOffer,
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
  /** A fresh token when the ingest ends the stream at the current one's exp. */
  refreshToken: () => Promise<string>;
  client: Client<typeof LocationIngestService>;
  random: Random;
  onOffer?: (rider: SimulatedRider, offer: RideOffer) => void;
  onError?: (error: unknown) => void;
}

/**
 * A rider app: drives grid routes at scooter speed, parks between trips,
 * and talks to the ingest through the rider client (clients/rider-client:
 * the adaptive interval, Reconnect, backoff, the offline backlog,
 * supersede), which asks it for a fix whenever one is due. With a job it
 * drives to the pickup, waits for the food, drives to the drop-off and
 * hands it over, then roams again.
 */
export class SimulatedRider {
  readonly #options: RiderOptions;
  readonly #client: RiderClient;
  #route: LatLng[];
  #routeStartedAt = Date.now();
  #parkedUntil = 0;
  #speedMps: number;
  #job: Job | undefined;
  #reserved = false;

  constructor(options: RiderOptions) {
    this.#options = options;
    const start = randomCorner(options.center, options.random);
    this.#route = randomRoute(options.center, start, options.random);
    this.#speedMps = 5 + options.random() * 4;
    this.#client = new RiderClient({
      ingest: options.client,
      token: options.token,
      refreshToken: options.refreshToken,
      // A fresh seq store per run: seq starts from the fix's time (max(last + 1, recorded_at_ms)).
      seqStore: new MemorySeqStore(),
      locate: () => this.#fix(),
    });
    this.#client.on("offer", (offer) => options.onOffer?.(this, offer));
    this.#client.on("retrying", ({ error }) => options.onError?.(error));
    this.#client.on("stopped", ({ reason, error }) => {
      if (reason !== "closed")
        options.onError?.(error ?? new Error(`rider client stopped: ${reason}`));
    });
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
    const stop = () => void this.#client.close();
    signal.addEventListener("abort", stop);
    await this.#client.start();
    signal.removeEventListener("abort", stop);
  }

  #fix(): Fix {
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
    return {
      lat: position.lat,
      lng: position.lng,
      accuracyM: 4 + random() * 8,
      speedMps,
      headingDeg,
      recordedAtMs: now,
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
    this.#client.pingNow();
  }

  #positionAt(now: number): LatLng {
    if (now < this.#parkedUntil) return this.#route[0] as LatLng;
    return along(this.#route, ((now - this.#routeStartedAt) / 1000) * this.#speedMps).at;
  }
}
