import { create } from "@bufbuild/protobuf";
import { EdgeError } from "../../core/errors/edge-error";
import {
  type SendPingRequest,
  type SendPingResponse,
  SendPingResponseSchema,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { RiderIdentity, RiderSessions } from "../session/rider-sessions";
import type { CallAdmission } from "./rider-calls";

/**
 * The rider a call was admitted for, or the reason it may not run: a
 * draining server first, then the transport's refusal (token, the rider's
 * cap). Every handler of the service starts here.
 */
export function admittedRider(sessions: RiderSessions, admission: CallAdmission): RiderIdentity {
  if (sessions.isDraining()) throw new EdgeError("draining", "server is draining");
  if (!admission.rider) throw admission.refusal;
  return admission.rider;
}

/** One unary SendPing, whichever path carries it: the ping to the rider's session, its ack back. */
export type SendPing = (
  request: SendPingRequest,
  admission: CallAdmission,
) => Promise<SendPingResponse>;

export function createSendPing(sessions: RiderSessions): SendPing {
  return async (request, admission) => {
    const rider = admittedRider(sessions, admission);
    if (!request.ping) throw new EdgeError("invalid_message", "SendPingRequest without a ping");
    const lease = sessions.acquire(rider);
    try {
      return create(SendPingResponseSchema, { ack: await lease.session.accept(request.ping) });
    } finally {
      lease.release();
    }
  };
}
