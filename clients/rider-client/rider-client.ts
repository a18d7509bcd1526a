// The rider app's side of the ingest protocol (proto/README.md, "Talking to
// the ingest"): one live StreamPings, a fix each time the server's
// next_interval_ms says so, seq saved before a fix leaves, Reconnect
// honoured, backoff with jitter on a broken stream, fixes kept while offline
// and uploaded with UploadPings when the ingest is back, offers as events,
// and no reconnect once a newer stream of the rider superseded this one.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { TOKEN_END_MESSAGE } from "../../core/auth/token-lifetime";
import {
  DropReason,
  type PingAck,
  StreamPingsRequestSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { createBackoff, retryAfterMs } from "../backoff";
import { ClientEvents } from "../client-events";
import { FixSource } from "./fix-source";
import { PingBacklog } from "./ping-backlog";
import type {
  RiderClientEvents,
  RiderClientOptions,
  RiderState,
  RiderStopReason,
} from "./rider-client-api";

/** What to do after a failed stream or upload. */
type Failure = { stop: RiderStopReason } | { retryAfterMs: number };

export class RiderClient {
  readonly #options: RiderClientOptions;
  readonly #events = new ClientEvents<RiderClientEvents>();
  readonly #backoff;
  readonly #fixes: FixSource;
  readonly #backlog: PingBacklog;
  #token: string;
  /** A token was renewed and nothing acked since: a refusal of the new one backs off. */
  #renewedSinceAck = false;
  #state: RiderState = "connecting";
  #intervalMs: number;
  #lastFixAt = Number.NEGATIVE_INFINITY;
  #call: AbortController | undefined;
  #wake: (() => void) | undefined;
  #wantFix = false;
  #running: Promise<void> | undefined;

  constructor(options: RiderClientOptions) {
    this.#options = options;
    this.#token = options.token;
    this.#intervalMs = options.firstIntervalMs ?? 1_000;
    this.#backoff = createBackoff(options.backoff);
    this.#fixes = new FixSource({
      locate: options.locate,
      timeoutMs: options.locateTimeoutMs ?? 10_000,
      seqStore: options.seqStore,
      onNoFix: (event) => this.#events.emit("noFix", event),
    });
    this.#backlog = new PingBacklog(options.maxBacklog ?? 20_000);
  }

  readonly on: ClientEvents<RiderClientEvents>["on"] = (type, listener) =>
    this.#events.on(type, listener);

  get state(): RiderState {
    return this.#state;
  }

  /** The seq given to the newest fix (saved in the SeqStore). */
  get seq(): bigint {
    return this.#fixes.seq;
  }

  /** Fixes waiting for an upload. */
  get backlogSize(): number {
    return this.#backlog.size;
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
    await this.#fixes.load();
    while (!this.#isStopped()) {
      let waitMs: number;
      try {
        if (this.#backlog.size > 0) await this.#upload();
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
      this.#backlog.takeBackUnacked();
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
        if (ping) this.#backlog.keep(ping);
        return;
      }
      if (ping) {
        this.#backlog.sent(ping);
        yield create(StreamPingsRequestSchema, { ping });
      }
      await this.#untilDue(signal);
    }
  }

  async #acked(ack: PingAck): Promise<void> {
    this.#backlog.acked();
    this.#setState("streaming");
    this.#backoff.reset();
    this.#renewedSinceAck = false;
    // The ack times the next fix (the sleep after this ping already began): wake it to re-time.
    if (ack.nextIntervalMs > 0 && ack.nextIntervalMs !== this.#intervalMs) {
      this.#intervalMs = ack.nextIntervalMs;
      this.#wake?.();
    }
    // An OUT_OF_ORDER fix below what the rider has stored: this app lost count.
    const lostCount = ack.dropped.some(
      (drop) => drop.reason === DropReason.OUT_OF_ORDER && drop.seq < ack.lastAcceptedSeq,
    );
    if (lostCount) await this.#fixes.adopt(ack.lastAcceptedSeq);
    this.#events.emit("ack", ack);
  }

  async #upload(): Promise<void> {
    this.#setState("uploading");
    const upload = this.#backlog.upload(this.#options.uploadChunk ?? 1_000);
    const call = new AbortController();
    this.#call = call;
    try {
      const response = await this.#options.ingest.uploadPings(upload.messages, {
        headers: { authorization: `Bearer ${this.#token}` },
        signal: call.signal,
      });
      upload.done();
      this.#events.emit("uploaded", { sent: upload.count, response });
    } catch (error) {
      if (ConnectError.from(error).code !== Code.InvalidArgument) throw error;
      upload.done();
      this.#events.emit("backlogDropped", { count: upload.count, error });
    } finally {
      this.#call = undefined;
    }
  }

  async #failure(error: unknown): Promise<Failure> {
    const { code, metadata, rawMessage } = ConnectError.from(error);
    switch (code) {
      case Code.FailedPrecondition:
        return { stop: "superseded" };
      case Code.PermissionDenied:
        return { stop: "refused" };
      case Code.Unauthenticated: {
        // At exp or for a revoked signing key (the message says which): a new token either way.
        const end = rawMessage === TOKEN_END_MESSAGE.revoked ? "token revoked" : "token expired";
        const refresh = this.#options.refreshToken;
        const fresh = refresh ? await refresh().catch(() => undefined) : undefined;
        // The refused token handed back (a provider caching tokens until their exp, after a
        // revocation): calling again with it would be refused as fast as the ingest answers.
        if (fresh === undefined || fresh === this.#token) return { stop: end };
        this.#token = fresh;
        // The first renewal streams again at once. A renewed token refused too (a provider
        // still signing with the revoked key) backs off: each refusal of a token of an unknown
        // key counts against the address's failed-auth limit, shared with every rider behind
        // the same carrier NAT.
        const retryAfterMs = this.#renewedSinceAck ? this.#backoff.next() : 0;
        this.#renewedSinceAck = true;
        return { retryAfterMs };
      }
      default:
        // At least the server's retry-after (a Connect header or a gRPC trailer on every 503 and 429).
        return {
          retryAfterMs: Math.max(this.#backoff.next(), retryAfterMs(metadata.get("retry-after"))),
        };
    }
  }

  /** Waits `ms` between streams, keeping a fix each interval (or at pingNow) for the upload. */
  async #collectOffline(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.#isStopped()) {
      const now = Date.now();
      if (this.#wantFix || now >= this.#lastFixAt + this.#intervalMs) {
        const ping = await this.#nextPing();
        if (ping) this.#backlog.keep(ping);
        continue;
      }
      if (now >= until) return;
      await this.#sleep(Math.min(until, this.#lastFixAt + this.#intervalMs) - now);
    }
  }

  /** The next fix (FixSource), its interval counted from now. */
  #nextPing() {
    this.#wantFix = false;
    this.#lastFixAt = Date.now();
    return this.#fixes.next(this.#lastFixAt);
  }

  /** Until the next fix is due: `#intervalMs` after the last one, as it stands when each sleep ends. */
  async #untilDue(signal: AbortSignal): Promise<void> {
    for (;;) {
      const leftMs = this.#lastFixAt + this.#intervalMs - Date.now();
      if (leftMs <= 0 || signal.aborted || this.#wantFix) return;
      await this.#sleep(leftMs, signal);
    }
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
