import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { TokenVerifier } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import type { RiderInboxMessage } from "../core/messages/rider-inbox";
import {
  type LocationIngestService,
  RideOfferSchema,
  type StreamPingsResponse,
  StreamPingsResponseSchema,
  UploadPingsResponseSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import type { IngestMetrics } from "./metrics";
import type { Intake } from "./ping-intake";
import { ResponseQueue } from "./response-queue";
import { authenticateRider, type RiderIdentity } from "./rider-auth";
import type { RiderInbox } from "./rider-inbox";
import type { RiderStateStore } from "./rider-state";
import { toConnectError } from "./to-connect-error";

export interface IngestServiceDeps {
  verifier: TokenVerifier;
  intake: Intake;
  states: RiderStateStore;
  inbox: RiderInbox;
  metrics: IngestMetrics;
  logger: Logger;
  maxUploadPings: number;
  now?: () => number;
}

/** Ends open rider streams with a Reconnect notice (SIGTERM drain). */
export interface StreamDrain {
  drain(afterMs: number): void;
  openStreams(): number;
}

/**
 * The LocationIngestService handlers. Any error thrown inside a handler
 * reaches the client as a Connect/gRPC code and ends only that call.
 */
export function createIngestService(
  deps: IngestServiceDeps,
): { service: ServiceImpl<typeof LocationIngestService> } & StreamDrain {
  const { verifier, intake, states, inbox, metrics, logger, maxUploadPings, now = Date.now } = deps;
  const streams = new Set<ResponseQueue<StreamPingsResponse>>();
  let drainingAfterMs: number | undefined;

  async function authenticate(context: HandlerContext): Promise<RiderIdentity> {
    if (drainingAfterMs !== undefined)
      throw toConnectError(new EdgeError("draining", "server is draining"));
    return authenticateRider(verifier, context.requestHeader);
  }

  function offerResponse(
    message: Extract<RiderInboxMessage, { type: "offer" }>,
  ): StreamPingsResponse {
    const offer = create(RideOfferSchema, {
      orderId: message.orderId,
      fencingToken: message.fencingToken,
      restaurantId: message.restaurantId,
      pickup: message.pickup,
      dropoff: message.dropoff,
      expiresAtMs: BigInt(message.expiresAtMs),
    });
    return create(StreamPingsResponseSchema, { event: { case: "offer", value: offer } });
  }

  const service: ServiceImpl<typeof LocationIngestService> = {
    async *streamPings(requests, context) {
      const rider = await authenticate(context);
      const state = await states.open(rider.riderId, rider.city);
      const responses = new ResponseQueue<StreamPingsResponse>();
      const stopListening = inbox.listen(rider.riderId, (message) => {
        if (message.type === "orders-changed") return states.invalidateOrders(state);
        metrics.offersDelivered.inc();
        responses.push(offerResponse(message));
      });
      streams.add(responses);
      metrics.streams.inc();
      const reading = (async () => {
        for await (const request of requests) {
          if (!request.ping)
            throw new EdgeError("invalid_message", "StreamPingsRequest without a ping");
          const receivedAtMs = now();
          await states.refresh(state);
          const dropped = await intake.acceptLive(state, request.ping, receivedAtMs);
          responses.push(
            create(StreamPingsResponseSchema, {
              event: { case: "ack", value: intake.ack(state, dropped ? [dropped] : []) },
            }),
          );
        }
      })();
      reading.then(
        () => responses.end(),
        (error: unknown) => responses.fail(toConnectError(error)),
      );
      try {
        yield* responses;
      } finally {
        streams.delete(responses);
        metrics.streams.dec();
        stopListening();
      }
    },

    async uploadPings(requests, context) {
      const rider = await authenticate(context);
      const state = await states.open(rider.riderId, rider.city);
      const dropped = [];
      let received = 0;
      let accepted = 0;
      try {
        for await (const request of requests) {
          received += request.pings.length;
          if (received > maxUploadPings) {
            throw new EdgeError(
              "payload_too_large",
              `an upload may carry at most ${maxUploadPings} pings`,
            );
          }
          await states.refresh(state);
          const drops = await intake.acceptBacklog(state, request.pings, now());
          accepted += request.pings.length - drops.length;
          dropped.push(...drops);
        }
      } catch (error) {
        throw toConnectError(error);
      }
      return create(UploadPingsResponseSchema, {
        acceptedCount: accepted,
        lastAcceptedSeq: state.confirmed?.seq ?? 0n,
        dropped,
      });
    },

    async sendPing(request, context) {
      const rider = await authenticate(context);
      if (!request.ping)
        throw toConnectError(new EdgeError("invalid_message", "SendPingRequest without a ping"));
      const receivedAtMs = now();
      const state = await states.forUnary(rider.riderId, rider.city);
      const dropped = await intake.acceptLive(state, request.ping, receivedAtMs);
      return { ack: intake.ack(state, dropped ? [dropped] : []) };
    },
  };

  return {
    service,
    drain(afterMs) {
      drainingAfterMs = afterMs;
      const reconnect = create(StreamPingsResponseSchema, {
        event: { case: "reconnect", value: { afterMs, reason: "server draining" } },
      });
      for (const responses of streams) {
        responses.push(reconnect);
        responses.end();
      }
      logger.info({ streams: streams.size }, "rider streams told to reconnect");
    },
    openStreams: () => streams.size,
  };
}
