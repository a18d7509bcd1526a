import { create } from "@bufbuild/protobuf";
import {
  type KeyRevocations,
  TOKEN_END_MESSAGE,
  whenTokenEnds,
} from "../../core/auth/token-lifetime";
import { EdgeError } from "../../core/errors/edge-error";
import type { GeoPing } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  type PingAck,
  RideOfferSchema,
  type StreamPingsResponse,
  StreamPingsResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { RiderIdentity, RiderSessions } from "../session/rider-sessions";
import type { ResponseSink } from "./response-queue";

/** What accept returns once the call is over: nothing to wait for (one promise, not one per ping). */
const SETTLED = Promise.resolve();

/** One open StreamPings call, whichever server path carries it. */
export interface StreamPingsCall {
  /** Hands one ping to the rider's session and sends its ack; call in request order. */
  accept(ping: GeoPing): Promise<void>;
  /** The call is over: the session forgets it (idempotent). */
  close(): void;
}

/**
 * StreamPings as the wire sees it, shared by the lean gRPC path and the
 * Connect handler: pings go to the rider's session, and its acks, offers and
 * end go to `responses` as StreamPingsResponse messages. A superseded stream fails
 * with `stream_superseded` (FAILED_PRECONDITION: the app must not reconnect
 * it); a drain sends `Reconnect` and ends the call cleanly. The token was
 * checked once, when the call opened; a stream kept for a whole shift fails
 * with `unauthenticated` ("token expired") at the token's exp, so a rider
 * whose tokens stop being issued stops streaming (and getting offers) then,
 * and the app comes back with a fresh one (docs/mobile-apps.md). It fails
 * the same way ("token revoked: ...") once the identity provider revokes
 * the key that signed the token (`revocations`, the token verifier's).
 */
export function openStreamPings(
  sessions: RiderSessions,
  rider: RiderIdentity,
  responses: ResponseSink<StreamPingsResponse>,
  revocations: KeyRevocations,
): StreamPingsCall {
  if (sessions.isDraining()) throw new EdgeError("draining", "server is draining");
  // Once superseded or drained, pings still in flight on this call are not the rider's to store.
  let live = true;
  const lease = sessions.openLiveStream(rider, {
    offer(message, expiresInMs) {
      const offer = create(RideOfferSchema, {
        ...message,
        expiresAtMs: BigInt(message.expiresAtMs),
        expiresInMs,
      });
      responses.push(create(StreamPingsResponseSchema, { event: { case: "offer", value: offer } }));
    },
    end(reason) {
      live = false;
      if (reason.kind === "superseded") {
        responses.fail(
          new EdgeError(
            "stream_superseded",
            "a newer StreamPings of this rider is open: this one must not reconnect",
          ),
        );
        return;
      }
      const reconnect = { afterMs: reason.afterMs, reason: "server draining" };
      responses.push(
        create(StreamPingsResponseSchema, { event: { case: "reconnect", value: reconnect } }),
      );
      responses.end();
    },
  });
  const cancelTokenEnd = whenTokenEnds(rider, revocations, (end) => {
    live = false;
    lease.release();
    responses.fail(new EdgeError("unauthenticated", TOKEN_END_MESSAGE[end]));
  });
  // One function per call, not a closure per ping; the response a typed literal
  // (create() would copy it and its oneof): a field missed is a compile error here.
  const pushAck = (ack: PingAck) => {
    responses.push({
      $typeName: "delivery.tracking.v1.StreamPingsResponse",
      event: { case: "ack", value: ack },
    });
  };
  return {
    accept: (ping) => (live ? lease.session.accept(ping).then(pushAck) : SETTLED),
    close() {
      live = false;
      cancelTokenEnd();
      lease.release();
    },
  };
}
