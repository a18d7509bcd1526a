import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { EdgeError } from "../core/errors/edge-error";
import {
  type DroppedPing,
  type LocationIngestService,
  UploadPingsResponseSchema,
} from "../proto/gen/delivery/tracking/v1/ingest_pb";
import type { Intake, UploadCursor } from "./ping-intake";
import type { RiderIdentity } from "./rider-auth";
import { callAdmission } from "./rider-calls";
import type { RiderStateStore } from "./rider-state";
import type { RiderStreams } from "./rider-streams";
import { toConnectError } from "./to-connect-error";

export interface IngestServiceDeps {
  intake: Intake;
  states: RiderStateStore;
  streams: RiderStreams;
  maxUploadPings: number;
  now?: () => number;
}

/**
 * The LocationIngestService handlers for connect-node (gRPC, gRPC-Web and
 * Connect). Any error thrown inside a handler reaches the client as a
 * Connect/gRPC code and ends only that call. The transport has checked the
 * token and the rider's call cap already (`callAdmission`).
 */
export function createIngestService(
  deps: IngestServiceDeps,
): ServiceImpl<typeof LocationIngestService> {
  const { intake, states, streams, maxUploadPings, now = Date.now } = deps;

  function authenticate(context: HandlerContext): RiderIdentity {
    if (streams.isDraining()) throw toConnectError(new EdgeError("draining", "server is draining"));
    const admission = context.values.get(callAdmission);
    if (admission.refusal) throw admission.refusal;
    return admission.rider;
  }

  return {
    async *streamPings(requests, context) {
      const stream = await streams.open(authenticate(context));
      const reading = (async () => {
        for await (const request of requests) {
          if (!request.ping)
            throw new EdgeError("invalid_message", "StreamPingsRequest without a ping");
          await stream.handlePing(request.ping);
        }
      })();
      reading.then(
        () => stream.responses.end(),
        (error: unknown) => stream.responses.fail(toConnectError(error)),
      );
      try {
        yield* stream.responses;
      } finally {
        stream.close();
      }
    },

    async uploadPings(requests, context) {
      const rider = authenticate(context);
      const state = await states.open(rider.riderId, rider.city);
      const dropped: DroppedPing[] = [];
      const cursor: UploadCursor = {};
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
          const drops = await intake.acceptBacklog(state, cursor, request.pings, now());
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
      const rider = authenticate(context);
      if (!request.ping)
        throw toConnectError(new EdgeError("invalid_message", "SendPingRequest without a ping"));
      const receivedAtMs = now();
      const state = await states.forUnary(rider.riderId, rider.city);
      const dropped = await intake.acceptLive(state, request.ping, receivedAtMs);
      return { ack: intake.ack(state, dropped ? [dropped] : []) };
    },
  };
}
