// What a rider client holds that the ingest has not acknowledged: fixes taken
// while no stream was live, and fixes sent on the live stream and not acked
// yet (back to the backlog when that stream breaks), the newest kept.
import { create } from "@bufbuild/protobuf";
import type { GeoPing } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  type UploadPingsRequest,
  UploadPingsRequestSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";

export class PingBacklog {
  readonly #max: number;
  /** Oldest first. */
  #waiting: GeoPing[] = [];
  #inFlight: GeoPing[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  /** Fixes waiting for an upload. */
  get size(): number {
    return this.#waiting.length;
  }

  /** A fix taken while no stream is live. */
  keep(ping: GeoPing): void {
    this.#waiting.push(ping);
    this.#trim();
  }

  /** A fix sent on the live stream: held until its ack. */
  sent(ping: GeoPing): void {
    this.#inFlight.push(ping);
  }

  /** One ack answers each ping, in order. */
  acked(): void {
    this.#inFlight.shift();
  }

  /** The stream broke: whatever it did not ack goes up with the backlog, first. */
  takeBackUnacked(): void {
    this.#waiting.unshift(...this.#inFlight.splice(0));
    this.#trim();
  }

  /**
   * The waiting fixes as UploadPings messages of `chunk` each, and a
   * function that removes them once the ingest has answered the upload (or
   * refused it as a whole). Fixes kept meanwhile stay.
   */
  upload(chunk: number): {
    count: number;
    messages: AsyncIterable<UploadPingsRequest>;
    done(): void;
  } {
    const pings = this.#waiting.slice();
    async function* messages() {
      for (let i = 0; i < pings.length; i += chunk)
        yield create(UploadPingsRequestSchema, { pings: pings.slice(i, i + chunk) });
    }
    return {
      count: pings.length,
      messages: messages(),
      done: () => {
        this.#waiting.splice(0, pings.length);
      },
    };
  }

  #trim(): void {
    const excess = this.#waiting.length - this.#max;
    if (excess > 0) this.#waiting.splice(0, excess);
  }
}
