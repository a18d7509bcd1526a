import { create } from "@bufbuild/protobuf";
import type { RiderInboxMessage } from "../core/messages/rider-inbox";
import type { GeoPing } from "../proto/gen/delivery/tracking/v1/geo_pb";
import {
  RideOfferSchema,
  type StreamPingsResponse,
  StreamPingsResponseSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import type { IngestMetrics } from "./metrics";
import type { Intake } from "./ping-intake";
import { ResponseQueue } from "./response-queue";
import type { RiderIdentity } from "./rider-auth";
import type { RiderInbox } from "./rider-inbox";
import type { RiderState, RiderStateStore } from "./rider-state";

/** One open StreamPings call, whichever server path carries it. */
export interface RiderStream {
  readonly state: RiderState;
  /** Acks, offers and the drain notice, in the order they happened. */
  readonly responses: ResponseQueue<StreamPingsResponse>;
  /** Checks and stores one ping and queues its ack; call in request order. */
  handlePing(ping: GeoPing): Promise<void>;
  /** Stops listening for offers and forgets the stream (idempotent). */
  close(): void;
}

/**
 * The rider streams of this process: what StreamPings does per stream,
 * shared by the Connect handler and the lean gRPC path, plus the drain that
 * tells every open stream to reconnect elsewhere.
 */
export function createRiderStreams(deps: {
  intake: Intake;
  states: RiderStateStore;
  inbox: RiderInbox;
  metrics: IngestMetrics;
  now?: () => number;
}) {
  const { intake, states, inbox, metrics, now = Date.now } = deps;
  const open = new Set<RiderStream>();
  let drainingAfterMs: number | undefined;

  function offerResponse(
    message: Extract<RiderInboxMessage, { type: "offer" }>,
  ): StreamPingsResponse {
    const offer = create(RideOfferSchema, { ...message, expiresAtMs: BigInt(message.expiresAtMs) });
    return create(StreamPingsResponseSchema, { event: { case: "offer", value: offer } });
  }

  return {
    isDraining: () => drainingAfterMs !== undefined,

    async open(rider: RiderIdentity): Promise<RiderStream> {
      const state = await states.open(rider.riderId, rider.city);
      const responses = new ResponseQueue<StreamPingsResponse>();
      const stopListening = inbox.listen(rider.riderId, (message) => {
        if (message.type === "orders-changed") return states.invalidateOrders(state);
        metrics.offersDelivered.inc();
        responses.push(offerResponse(message));
      });
      let closed = false;
      const stream: RiderStream = {
        state,
        responses,
        async handlePing(ping) {
          const receivedAtMs = now();
          await states.refresh(state);
          const dropped = await intake.acceptLive(state, ping, receivedAtMs);
          const ack = intake.ack(state, dropped ? [dropped] : []);
          responses.push(create(StreamPingsResponseSchema, { event: { case: "ack", value: ack } }));
        },
        close() {
          if (closed) return;
          closed = true;
          open.delete(stream);
          metrics.streams.dec();
          stopListening();
        },
      };
      open.add(stream);
      metrics.streams.inc();
      return stream;
    },

    /** Tells every open stream to come back after `afterMs`, and ends it. */
    drain(afterMs: number): number {
      drainingAfterMs = afterMs;
      const reconnect = create(StreamPingsResponseSchema, {
        event: { case: "reconnect", value: { afterMs, reason: "server draining" } },
      });
      for (const stream of open) {
        stream.responses.push(reconnect);
        stream.responses.end();
      }
      return open.size;
    },
  };
}

export type RiderStreams = ReturnType<typeof createRiderStreams>;
