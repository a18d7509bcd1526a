import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type KeyRevocations,
  TOKEN_END_MESSAGE,
  type TokenEnd,
  whenTokenEnds,
} from "../../core/auth/token-lifetime";
import { EdgeError } from "../../core/errors/edge-error";
import type {
  LocationIngestService,
  StreamPingsResponse,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { RiderIdentity, RiderSessions } from "../session/rider-sessions";
import { stopReading } from "./message-guard";
import { ResponseQueue } from "./response-queue";
import { callAdmission } from "./rider-calls";
import { admittedRider, type SendPing } from "./send-ping";
import { openStreamPings, type StreamPingsCall } from "./stream-pings";

/**
 * The LocationIngestService handlers for connect-node (gRPC-Web, Connect,
 * and gRPC other than plain StreamPings): each translates its messages to
 * the rider's session and back. What they throw reaches the client through
 * the router's translateErrors interceptor and ends only that call. The
 * transport has admitted the call (token, the rider's cap) before.
 */
export function createConnectService(deps: {
  sessions: RiderSessions;
  /** The token verifier's: a StreamPings or UploadPings call ends when its token's signing key is revoked. */
  revocations: KeyRevocations;
  sendPing: SendPing;
  maxUploadPings: number;
}): ServiceImpl<typeof LocationIngestService> {
  const { sessions, revocations, sendPing, maxUploadPings } = deps;

  function riderOf(context: HandlerContext): RiderIdentity {
    return admittedRider(sessions, context.values.get(callAdmission));
  }

  return {
    async *streamPings(requests, context) {
      let call: StreamPingsCall | undefined;
      // Every end of the call comes here once, whoever ends it: the request
      // loop, the session (supersede, drain), the token's end (exp, key revoked) or the writer.
      const stopRequest = context.values.get(stopReading);
      const responses = new ResponseQueue<StreamPingsResponse>(() => {
        stopRequest();
        call?.close();
      });
      const opened = openStreamPings(sessions, riderOf(context), responses, revocations);
      call = opened;
      const reading = (async () => {
        for await (const request of requests) {
          if (!request.ping)
            throw new EdgeError("invalid_message", "StreamPingsRequest without a ping");
          await opened.accept(request.ping);
        }
      })();
      reading.then(
        () => responses.end(),
        (error: unknown) => responses.fail(error),
      );
      try {
        yield* responses;
      } finally {
        responses.end();
      }
    },

    async uploadPings(requests, context) {
      const rider = riderOf(context);
      const lease = sessions.acquire(rider);
      // An upload held open past its token (exp, or its signing key revoked) would keep
      // moving the rider's live position: the next message is refused, those before stay.
      let tokenEnd: TokenEnd | undefined;
      const cancelTokenEnd = whenTokenEnds(rider, revocations, (end) => {
        tokenEnd = end;
      });
      try {
        const upload = lease.session.backlog();
        let received = 0;
        for await (const request of requests) {
          if (tokenEnd) throw new EdgeError("unauthenticated", TOKEN_END_MESSAGE[tokenEnd]);
          received += request.pings.length;
          if (received > maxUploadPings)
            throw new EdgeError(
              "payload_too_large",
              `an upload may carry at most ${maxUploadPings} pings`,
            );
          await upload.accept(request.pings);
        }
        return upload.result();
      } finally {
        cancelTokenEnd();
        lease.release();
      }
    },

    sendPing: (request, context) => sendPing(request, context.values.get(callAdmission)),
  };
}
