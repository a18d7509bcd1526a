// The rider app's side of the ingest protocol (proto/README.md, "Talking to
// the ingest"): one live StreamPings, a fix each time the server's
// next_interval_ms says so, seq saved before a fix leaves, Reconnect
// honoured, backoff with jitter on a broken stream, fixes kept while offline
// and uploaded with UploadPings when the ingest is back, offers as events,
// and no reconnect once a newer stream of the rider superseded this one.
import { create } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { type GeoPing, GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  DropReason,
  type LocationIngestService,
  type PingAck,
  type RideOffer,
  StreamPingsRequestSchema,
  UploadPingsRequestSchema,
  type UploadPingsResponse,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { type BackoffOptions, createBackoff } from "../backoff";
import { ClientEvents } from "../client-events";
import type { SeqStore } from "./seq-store";

/** One GPS fix as the app's location service gives it (seq is the client's job). */
export interface Fix {
  lat: number;
  lng: number;
  accuracyM: number;
  speedMps: number;
  headingDeg: number;
  /** When the phone took the fix (default: now). */
  recordedAtMs?: number;
}

export type RiderState = "connecting" | "streaming" | "uploading" | "offline" | "stopped";

export type RiderStopReason =
  /** close() was called. */
  | "closed"
  /** A newer StreamPings of this rider (this app restarted, or another device) holds the live position. */
  | "superseded"
  /** Unauthenticated, and no refreshToken (or it failed). */
  | "token expired"
  /** PermissionDenied: the token is not a rider's. */
  | "refused";

export interface RiderClientEvents {
  state: RiderState;
  /** Every ack of the live stream (next_interval_ms, last_accepted_seq, drops). */
  ack: PingAck;
  offer: RideOffer;
  /** The server's Reconnect (a drain): the client opens a new stream after afterMs. */
  reconnect: { afterMs: number; reason: string };
  /** A stream or upload failed; the client tries again after delayMs. */
  retrying: { error: unknown; delayMs: number };
  /** An offline backlog went up: how many fixes, and the ingest's answer. */
  uploaded: { sent: number; response: UploadPingsResponse };
  /** A backlog the ingest refused as a whole (InvalidArgument): dropped, so it cannot block the stream. */
  backlogDropped: { count: number; error: unknown };
  /** A ping was due and locate() had no fix (undefined, or `error`: it threw, rejected or timed out): none sent that interval. */
  noFix: { error?: unknown };
  stopped: { reason: RiderStopReason; error?: unknown };
}

export interface RiderClientOptions {
  /** A LocationIngestService client (connect-node's gRPC transport in Bun, connect-web in a browser). */
  ingest: Client<typeof LocationIngestService>;
  token: string;
  /** Called on Unauthenticated; resolves to a fresh token. */
  refreshToken?: () => Promise<string>;
  seqStore: SeqStore;
  /**
   * The phone's current fix, asked for each time a ping is due (online or not),
   * at once or as a promise (the platforms' location APIs answer later);
   * undefined, or a throw or rejection, when it has none (GPS off, no fix
   * yet): that interval sends nothing and the stream stays open. The next
   * interval starts once it has answered, or after `locateTimeoutMs`.
   */
  locate: () => Fix | undefined | Promise<Fix | undefined>;
  /** How long a pending locate() may take before its interval counts as a missed fix (default 10,000 ms). */
  locateTimeoutMs?: number;
  /** The interval until the first ack names one (ms; default 1,000). */
  firstIntervalMs?: number;
  /** Fixes kept while offline, the newest (default 20,000: one UploadPings call). */
  maxBacklog?: number;
  /** Fixes per UploadPings message (default 1,000: small enough for a slow link). */
  uploadChunk?: number;
  backoff?: Partial<BackoffOptions>;
}

const MAX_SEQ = 2n ** 64n - 1n;

/** What to do after a failed stream or upload. */
type Failure = { stop: RiderStopReason } | { retryAfterMs: number };

export class RiderClient {
  readonly #options: RiderClientOptions;
  readonly #events = new ClientEvents<RiderClientEvents>();
  readonly #backoff;
  #token: string;
  #state: RiderState = "connecting";
  #seq = 0n;
  #intervalMs: number;
  #lastFixAt = Number.NEGATIVE_INFINITY;
  /** Fixes taken while no stream was live, oldest first. */
  #backlog: GeoPing[] = [];
  /** Fixes sent on the live stream and not acked yet: back to the backlog if the stream breaks. */
  #inFlight: GeoPing[] = [];
  #call: AbortController | undefined;
  #wake: (() => void) | undefined;
  #wantFix = false;
  #running: Promise<void> | undefined;

  constructor(options: RiderClientOptions) {
    this.#options = options;
    this.#token = options.token;
    this.#intervalMs = options.firstIntervalMs ?? 1_000;
    this.#backoff = createBackoff(options.backoff);
  }

  readonly on: ClientEvents<RiderClientEvents>["on"] = (type, listener) =>
    this.#events.on(type, listener);

  get state(): RiderState {
    return this.#state;
  }

  /** The seq given to the newest fix (saved in the SeqStore). */
  get seq(): bigint {
    return this.#seq;
  }

  /** Fixes waiting for an upload. */
  get backlogSize(): number {
    return this.#backlog.length;
  }

  /** Starts streaming; the promise settles when the client stops. */
  start(): Promise<void> {
    this.#running ??= this.#run();
    return this.#running;
  }

  /** Sends (or, offline, keeps) a fix now instead of at the interval: the rider set off, turned... */
  pingNow(): void {
    this.#wantFix = true;
    this.#wake?.();
  }

  /** Stops for good; resolves once the run has ended. */
  async close(): Promise<void> {
    this.#stop("closed");
    await this.#running;
  }

  async #run(): Promise<void> {
    this.#seq = (await this.#options.seqStore.load()) ?? 0n;
    while (!this.#isStopped()) {
      let waitMs: number;
      try {
        if (this.#backlog.length > 0) await this.#upload();
        const reconnect = await this.#stream();
        if (reconnect) {
          this.#events.emit("reconnect", reconnect);
          waitMs = reconnect.afterMs;
        } else waitMs = this.#backoff.next();
      } catch (error) {
        if (this.#isStopped()) break;
        const failure = await this.#failure(error);
        if ("stop" in failure) {
          this.#stop(failure.stop, error);
          break;
        }
        waitMs = failure.retryAfterMs;
        this.#events.emit("retrying", { error, delayMs: waitMs });
      }
      // Whatever the broken stream did not ack goes up with the backlog.
      this.#backlog.unshift(...this.#inFlight.splice(0));
      this.#trimBacklog();
      if (this.#isStopped()) break;
      this.#setState("offline");
      await this.#collectOffline(waitMs);
    }
  }

  /** One live stream; resolves with the server's Reconnect, or undefined when it ended without one. */
  async #stream(): Promise<{ afterMs: number; reason: string } | undefined> {
    this.#setState("connecting");
    const call = new AbortController();
    this.#call = call;
    try {
      const responses = this.#options.ingest.streamPings(this.#pings(call.signal), {
        headers: { authorization: `Bearer ${this.#token}` },
        signal: call.signal,
      });
      for await (const { event } of responses) {
        if (event.case === "ack") await this.#acked(event.value);
        else if (event.case === "offer") this.#events.emit("offer", event.value);
        else if (event.case === "reconnect")
          return { afterMs: event.value.afterMs, reason: event.value.reason };
      }
      return undefined;
    } finally {
      call.abort();
      this.#call = undefined;
      this.#wake?.();
    }
  }

  async *#pings(signal: AbortSignal) {
    while (!signal.aborted) {
      const ping = await this.#nextPing();
      // The stream ended while the fix was being taken: it goes up with the backlog.
      if (signal.aborted) {
        if (ping) this.#backlog.push(ping);
        return;
      }
      if (ping) {
        this.#inFlight.push(ping);
        yield create(StreamPingsRequestSchema, { ping });
      }
      await this.#sleep(this.#intervalMs, signal);
    }
  }

  async #acked(ack: PingAck): Promise<void> {
    // One ack answers each ping, in order.
    this.#inFlight.shift();
    this.#setState("streaming");
    this.#backoff.reset();
    if (ack.nextIntervalMs > 0) this.#intervalMs = ack.nextIntervalMs;
    // An OUT_OF_ORDER fix below what the rider has stored: this app lost count (a restore
    // from an old backup, another install); go on from the stored seq instead of waiting.
    const lostCount = ack.dropped.some(
      (drop) => drop.reason === DropReason.OUT_OF_ORDER && drop.seq < ack.lastAcceptedSeq,
    );
    if (lostCount && ack.lastAcceptedSeq > this.#seq && ack.lastAcceptedSeq < MAX_SEQ) {
      this.#seq = ack.lastAcceptedSeq;
      await this.#options.seqStore.save(this.#seq);
    }
    this.#events.emit("ack", ack);
  }

  async #upload(): Promise<void> {
    this.#setState("uploading");
    const pings = this.#backlog.slice();
    const chunk = this.#options.uploadChunk ?? 1_000;
    async function* messages() {
      for (let i = 0; i < pings.length; i += chunk)
        yield create(UploadPingsRequestSchema, { pings: pings.slice(i, i + chunk) });
    }
    const call = new AbortController();
    this.#call = call;
    try {
      const response = await this.#options.ingest.uploadPings(messages(), {
        headers: { authorization: `Bearer ${this.#token}` },
        signal: call.signal,
      });
      this.#backlog.splice(0, pings.length);
      this.#events.emit("uploaded", { sent: pings.length, response });
    } catch (error) {
      if (ConnectError.from(error).code !== Code.InvalidArgument) throw error;
      this.#backlog.splice(0, pings.length);
      this.#events.emit("backlogDropped", { count: pings.length, error });
    } finally {
      this.#call = undefined;
    }
  }

  async #failure(error: unknown): Promise<Failure> {
    switch (ConnectError.from(error).code) {
      case Code.FailedPrecondition:
        return { stop: "superseded" };
      case Code.PermissionDenied:
        return { stop: "refused" };
      case Code.Unauthenticated: {
        const refresh = this.#options.refreshToken;
        const fresh = refresh ? await refresh().catch(() => undefined) : undefined;
        if (fresh === undefined) return { stop: "token expired" };
        this.#token = fresh;
        return { retryAfterMs: 0 };
      }
      default:
        return { retryAfterMs: this.#backoff.next() };
    }
  }

  /** Waits `ms` between streams, keeping a fix each interval (or at pingNow) for the upload. */
  async #collectOffline(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.#isStopped()) {
      const now = Date.now();
      if (this.#wantFix || now >= this.#lastFixAt + this.#intervalMs) {
        const ping = await this.#nextPing();
        if (ping) this.#backlog.push(ping);
        this.#trimBacklog();
        continue;
      }
      if (now >= until) return;
      await this.#sleep(Math.min(until, this.#lastFixAt + this.#intervalMs) - now);
    }
  }

  /**
   * The next fix with its seq, saved before it leaves: seq = max(last + 1, recorded_at_ms).
   * Undefined when locate() has none: a GPS hiccup must not break the stream.
   */
  async #nextPing(): Promise<GeoPing | undefined> {
    this.#wantFix = false;
    this.#lastFixAt = Date.now();
    let located: Fix | undefined;
    try {
      located = await this.#located();
    } catch (error) {
      this.#events.emit("noFix", { error });
      return undefined;
    }
    if (located === undefined) {
      this.#events.emit("noFix", {});
      return undefined;
    }
    const { recordedAtMs = this.#lastFixAt, ...fix } = located;
    const recorded = BigInt(Math.trunc(recordedAtMs));
    this.#seq = this.#seq + 1n > recorded ? this.#seq + 1n : recorded;
    await this.#options.seqStore.save(this.#seq);
    return create(GeoPingSchema, { ...fix, recordedAtMs: recorded, seq: this.#seq });
  }

  /** locate()'s answer, or a rejection once it is late: a location call that never answers must not stop the pings. */
  #located(): Promise<Fix | undefined> {
    const timeoutMs = this.#options.locateTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`locate() did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([Promise.resolve().then(() => this.#options.locate()), late]).finally(() =>
      clearTimeout(timer),
    );
  }

  #trimBacklog(): void {
    const excess = this.#backlog.length - (this.#options.maxBacklog ?? 20_000);
    if (excess > 0) this.#backlog.splice(0, excess);
  }

  #sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted || this.#wantFix) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** A method, not a field test: the state changes across every await. */
  #isStopped(): boolean {
    return this.#state === "stopped";
  }

  #setState(state: RiderState): void {
    if (this.#state === state || this.#state === "stopped") return;
    this.#state = state;
    this.#events.emit("state", state);
  }

  #stop(reason: RiderStopReason, error?: unknown): void {
    if (this.#state === "stopped") return;
    this.#setState("stopped");
    this.#call?.abort();
    this.#wake?.();
    this.#events.emit("stopped", error === undefined ? { reason } : { reason, error });
  }
}
