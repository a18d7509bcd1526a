// Where a rider client's pings come from: the phone's fix (asked of the
// app's locate(), bounded in time) numbered by the seq rule and saved in the
// SeqStore before it leaves (proto/README.md, "seq").
import { create } from "@bufbuild/protobuf";
import { type GeoPing, GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
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

export type Locate = () => Fix | undefined | Promise<Fix | undefined>;

const MAX_SEQ = 2n ** 64n - 1n;
/**
 * A hung locate() is waited on for this many timeouts before it is given up
 * and locate() asked anew: a stuck location service gets one more call per
 * 5 timeouts (50 s by default), not one per interval, and one that never
 * answers still does not stop the pings for good.
 */
const LOCATE_WAITS_BEFORE_ASKING_AGAIN = 5;

export class FixSource {
  readonly #locate: Locate;
  readonly #timeoutMs: number;
  readonly #seqStore: SeqStore;
  readonly #onNoFix: (event: { error?: unknown }) => void;
  #seq = 0n;
  /** A locate() call not yet settled: the next fix waits on it rather than pile up another. */
  #locating: { answer: Promise<Fix | undefined>; sinceMs: number } | undefined;

  constructor(options: {
    locate: Locate;
    timeoutMs: number;
    seqStore: SeqStore;
    /** A fix was asked for and there was none (undefined, or `error`: it threw, rejected or timed out). */
    onNoFix: (event: { error?: unknown }) => void;
  }) {
    this.#locate = options.locate;
    this.#timeoutMs = options.timeoutMs;
    this.#seqStore = options.seqStore;
    this.#onNoFix = options.onNoFix;
  }

  /** The seq given to the newest fix (saved in the SeqStore). */
  get seq(): bigint {
    return this.#seq;
  }

  /** Goes on from the stored seq (0 on a fresh install). */
  async load(): Promise<void> {
    this.#seq = (await this.#seqStore.load()) ?? 0n;
  }

  /**
   * The next fix with its seq, saved before it leaves: seq = max(last + 1,
   * recorded_at_ms), `recorded_at_ms` defaulting to `askedAtMs`. Undefined
   * when locate() has none: a GPS hiccup must not break the stream.
   */
  async next(askedAtMs: number): Promise<GeoPing | undefined> {
    let located: Fix | undefined;
    try {
      located = await this.#located();
    } catch (error) {
      this.#onNoFix({ error });
      return undefined;
    }
    if (located === undefined) {
      this.#onNoFix({});
      return undefined;
    }
    const { recordedAtMs = askedAtMs, ...fix } = located;
    const recorded = BigInt(Math.trunc(recordedAtMs));
    this.#seq = this.#seq + 1n > recorded ? this.#seq + 1n : recorded;
    await this.#seqStore.save(this.#seq);
    return create(GeoPingSchema, { ...fix, recordedAtMs: recorded, seq: this.#seq });
  }

  /**
   * The ingest's count of this rider, from an ack that dropped a fix as
   * OUT_OF_ORDER below it: this app lost count (a restore from an old
   * backup, another install), so it goes on from there instead of waiting.
   */
  async adopt(lastAcceptedSeq: bigint): Promise<void> {
    if (lastAcceptedSeq <= this.#seq || lastAcceptedSeq >= MAX_SEQ) return;
    this.#seq = lastAcceptedSeq;
    await this.#seqStore.save(this.#seq);
  }

  /**
   * locate()'s answer, or a rejection once it is late: a location call that
   * never answers must not stop the pings. A late call is not made again
   * while it hangs (a stuck location service would get one more per interval):
   * the next fix waits on it, and a fix it gives late is that fix; after
   * LOCATE_WAITS_BEFORE_ASKING_AGAIN timeouts it is left and locate() asked anew.
   */
  #located(): Promise<Fix | undefined> {
    const timeoutMs = this.#timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`locate() did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    const now = Date.now();
    if (
      !this.#locating ||
      now - this.#locating.sinceMs >= LOCATE_WAITS_BEFORE_ASKING_AGAIN * timeoutMs
    ) {
      const call = {
        sinceMs: now,
        answer: Promise.resolve()
          .then(this.#locate)
          .finally(() => {
            if (this.#locating === call) this.#locating = undefined;
          }),
      };
      this.#locating = call;
    }
    return Promise.race([this.#locating.answer, late]).finally(() => clearTimeout(timer));
  }
}
