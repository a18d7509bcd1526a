import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import type { TokenVerifier } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import type { IngestMetrics } from "./metrics";
import { authenticateRider, type RiderIdentity } from "./rider-auth";

/** What the transport decided about a call before handing it on: its rider, or its refusal. */
export type CallAdmission =
  | { readonly rider: RiderIdentity; readonly refusal?: undefined }
  | { readonly rider?: undefined; readonly refusal: ConnectError };

/** A call's admission, passed to the Connect handlers in their context values. */
export const callAdmission = createContextKey<CallAdmission>(
  { refusal: new ConnectError("call reached a handler without admission", Code.Internal) },
  { description: "the rider call's admission" },
);

export interface AdmittedCall {
  readonly admission: CallAdmission;
  /** Gives the rider's slot back; idempotent, a no-op for a refused call. */
  release(): void;
}

const NOTHING_TO_RELEASE = () => undefined;

/**
 * Token handling for every call on both ports, once, when the call starts:
 * the rider from the token, and a cap on the calls one rider may have open
 * on this process (a phone needs one StreamPings, perhaps an upload beside
 * it), so one token cannot hold thousands of streams.
 */
export function createRiderCalls(deps: {
  verifier: TokenVerifier;
  maxPerRider: number;
  metrics: IngestMetrics;
}) {
  const { verifier, maxPerRider, metrics } = deps;
  const open = new Map<string, number>();

  return {
    async admit(authorization: string | null | undefined): Promise<AdmittedCall> {
      let rider: RiderIdentity;
      try {
        rider = await authenticateRider(verifier, authorization);
      } catch (error) {
        return { admission: { refusal: ConnectError.from(error) }, release: NOTHING_TO_RELEASE };
      }
      const { riderId } = rider;
      const count = open.get(riderId) ?? 0;
      if (count >= maxPerRider) {
        metrics.limitHits.inc({ limit: "rider_streams" });
        const refusal = new EdgeError(
          "too_many_connections",
          `this rider already has ${maxPerRider} calls open on this node`,
        ).toConnectError();
        return { admission: { refusal }, release: NOTHING_TO_RELEASE };
      }
      open.set(riderId, count + 1);
      let released = false;
      return {
        admission: { rider },
        release() {
          if (released) return;
          released = true;
          const left = (open.get(riderId) ?? 1) - 1;
          if (left > 0) open.set(riderId, left);
          else open.delete(riderId);
        },
      };
    },
  };
}

export type RiderCalls = ReturnType<typeof createRiderCalls>;
