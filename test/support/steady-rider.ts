import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { GeoPingSchema } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  DropReason,
  type LocationIngestService,
  type RideOffer,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { openPingStream } from "./ping-stream";
import { waitUntil } from "./wait";

export interface SteadyRider {
  /** Offers pushed down the stream, in order. */
  readonly offers: RideOffer[];
  /** Pings the ingest reported dropped, by reason name (e.g. "UNAVAILABLE"). */
  readonly dropped: Map<string, number>;
  /** Pings acknowledged as accepted. */
  accepted(): number;
  /** Resolves once a ping sent at or after `sinceMs` (Date.now()) was accepted. */
  acceptedSince(sinceMs: number, timeoutMs?: number): Promise<void>;
  /** When the first ping sent at or after `sinceMs` and accepted was sent, if one was. */
  firstAcceptedSentAfter(sinceMs: number): number | undefined;
  /** Whether the stream is still open (the ingest never ended it). */
  open(): boolean;
  /** Stops pinging and half-closes the stream. */
  stop(): Promise<void>;
}

/**
 * A rider app that keeps one StreamPings stream open and sends a live ping
 * every `everyMs`, moving north at walking pace, whatever the answers: for
 * tests where Redis goes away and comes back under a rider's feet.
 */
export function startSteadyRider(
  client: Client<typeof LocationIngestService>,
  token: string,
  options: { everyMs?: number; lat?: number; lng?: number } = {},
): SteadyRider {
  const { everyMs = 100, lat = 51.5074, lng = -0.1278 } = options;
  const stream = openPingStream(client, token);
  const offers: RideOffer[] = [];
  const dropped = new Map<string, number>();
  const sentAt = new Map<bigint, number>();
  const droppedSeqs = new Set<bigint>();
  let lastAccepted = 0n;
  let newestAcceptedSentAt = 0;
  const acceptedSentAt: number[] = [];
  let acceptedCount = 0;
  let ended = false;
  let seq = 0n;

  const timer = setInterval(() => {
    seq += 1n;
    sentAt.set(seq, Date.now());
    stream.send(
      create(GeoPingSchema, {
        lat: lat + Number(seq) * 0.000005,
        lng,
        accuracyM: 5,
        speedMps: 5,
        headingDeg: 0,
        recordedAtMs: BigInt(Date.now()),
        seq,
      }),
    );
  }, everyMs);

  const reading = (async () => {
    for (;;) {
      const response = await stream.next(60_000).catch(() => undefined);
      if (!response) break;
      if (response.event.case === "offer") offers.push(response.event.value);
      if (response.event.case !== "ack") continue;
      const ack = response.event.value;
      for (const drop of ack.dropped) {
        droppedSeqs.add(drop.seq);
        const reason = DropReason[drop.reason] ?? String(drop.reason);
        dropped.set(reason, (dropped.get(reason) ?? 0) + 1);
      }
      for (let s = lastAccepted + 1n; s <= ack.lastAcceptedSeq; s++) {
        if (droppedSeqs.has(s)) continue;
        acceptedCount += 1;
        acceptedSentAt.push(sentAt.get(s) ?? 0);
        newestAcceptedSentAt = Math.max(newestAcceptedSentAt, sentAt.get(s) ?? 0);
      }
      if (ack.lastAcceptedSeq > lastAccepted) lastAccepted = ack.lastAcceptedSeq;
    }
    ended = true;
  })();

  return {
    offers,
    dropped,
    accepted: () => acceptedCount,
    acceptedSince: (sinceMs, timeoutMs = 10_000) =>
      waitUntil(() => newestAcceptedSentAt >= sinceMs, timeoutMs, "a ping accepted"),
    firstAcceptedSentAfter: (sinceMs) => acceptedSentAt.find((at) => at >= sinceMs),
    open: () => !ended,
    async stop() {
      clearInterval(timer);
      await stream.finish().catch(() => undefined);
      await reading;
    },
  };
}
