import { createContextKey } from "@connectrpc/connect";
import type { Logger } from "pino";
import { bearerToken, type TokenVerifier } from "../../core/auth/token-verifier";
import { EdgeError } from "../../core/errors/edge-error";
import type { AuthFailureLimiter } from "../../core/limits/auth-failure-limit";
import { verifyWithinLimit } from "../../core/limits/verify-within-limit";
import { isKeyPart } from "../../core/redis/keys";
import type { LimitHit } from "../metrics";
import type { RiderIdentity } from "../session/rider-sessions";

/** What the transport decided about a call before handing it on: its rider, or why not. */
export type CallAdmission =
  | { readonly rider: RiderIdentity; readonly refusal?: undefined }
  | { readonly rider?: undefined; readonly refusal: unknown };

/** A call's admission, passed to the Connect handlers in their context values. */
export const callAdmission = createContextKey<CallAdmission>(
  { refusal: new EdgeError("internal", "call reached a handler without admission") },
  { description: "the rider call's admission" },
);

export interface AdmittedCall {
  readonly admission: CallAdmission;
  /** Gives the rider's slot back; idempotent, a no-op for a refused or uncounted call. */
  release(): void;
}

const NOTHING_TO_RELEASE = () => undefined;

/**
 * `Retry-After` of a 429 `too_many_connections` past the calls per rider: a
 * slot frees when one of the rider's own calls ends (a unary ping within a
 * round trip, an upload once its backlog is in), so a couple of seconds.
 */
export const RIDER_CALLS_RETRY_AFTER_SECONDS = 2;

/**
 * Token handling for every call on both ports, once, when the call starts:
 * the rider from the bearer token (Unauthenticated without a good one,
 * PermissionDenied for any role but rider or without a usable id and
 * city) under the edge's failed-auth limit per client address
 * (core/limits/verify-within-limit.ts: a blocked address is
 * ResourceExhausted `rate_limited` with `retry-after` before any signature
 * check, unless its token was verified here before), and a cap on the calls
 * beside StreamPings one rider may have open on this process (uploads,
 * unary pings), so one token cannot hold thousands of them. StreamPings
 * needs no cap: a rider has one live stream, and each new one ends the one
 * before (session/rider-sessions.ts). Each refusal is logged at debug with
 * its code.
 */
export function createRiderCalls(deps: {
  verifier: TokenVerifier;
  /** Failed token checks per client address, counted with the gateway's and tracking's. */
  authFailures: AuthFailureLimiter;
  maxPerRider: number;
  reportLimit: LimitHit;
  logger: Logger;
}) {
  const { verifier, authFailures, maxPerRider, reportLimit, logger } = deps;
  const open = new Map<string, number>();

  async function riderOf(
    authorization: string | null | undefined,
    address: () => string,
  ): Promise<RiderIdentity> {
    const identity = await verifyWithinLimit(verifier, bearerToken(authorization), {
      limiter: authFailures,
      address,
      onRefused: () => reportLimit("failed_auth", { address: address() }),
    });
    if (identity.role !== "rider") throw new EdgeError("forbidden", "only riders may send pings");
    // Both name Redis keys and their hash tags.
    if (!isKeyPart(identity.sub) || !identity.city || !isKeyPart(identity.city))
      throw new EdgeError("forbidden", "rider token lacks a usable id or city");
    return { riderId: identity.sub, city: identity.city, exp: identity.exp, key: identity.key };
  }

  return {
    /**
     * Admits a call; `counted` calls take one of the rider's slots until
     * released. `address` reads the client's address (the TCP peer, on the
     * HTTP/1.1 port the front's client, or INGEST_CLIENT_ADDRESS_HEADER's
     * rightmost entry), called only when the failed-auth limit needs it.
     */
    async admit(
      authorization: string | null | undefined,
      counted: boolean,
      address: () => string,
    ): Promise<AdmittedCall> {
      let rider: RiderIdentity;
      try {
        rider = await riderOf(authorization, address);
      } catch (error) {
        const code = error instanceof EdgeError ? error.code : "internal";
        logger.debug({ code }, "rider call refused");
        return { admission: { refusal: error }, release: NOTHING_TO_RELEASE };
      }
      if (!counted) return { admission: { rider }, release: NOTHING_TO_RELEASE };
      const { riderId } = rider;
      const count = open.get(riderId) ?? 0;
      if (count >= maxPerRider) {
        reportLimit("rider_calls", { riderId });
        const refusal = new EdgeError(
          "too_many_connections",
          `this rider already has ${maxPerRider} uploads or unary calls open on this node`,
          { retryAfterSeconds: RIDER_CALLS_RETRY_AFTER_SECONDS },
        );
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
