import { bearerToken, type TokenVerifier } from "../core/auth/token-verifier";
import { EdgeError } from "../core/errors/edge-error";
import { isKeyPart } from "../core/redis/keys";
import { toConnectError } from "./to-connect-error";

export interface RiderIdentity {
  readonly riderId: string;
  readonly city: string;
}

/**
 * The rider behind a call, from its bearer token only: Unauthenticated for a
 * missing or bad token, PermissionDenied for any role but rider.
 */
export async function authenticateRider(
  verifier: TokenVerifier,
  authorization: string | null | undefined,
): Promise<RiderIdentity> {
  try {
    const token = bearerToken(authorization);
    if (!token) throw new EdgeError("unauthenticated", "missing bearer token");
    const identity = await verifier.verify(token);
    if (identity.role !== "rider") throw new EdgeError("forbidden", "only riders may send pings");
    if (!identity.city || !isKeyPart(identity.sub)) {
      throw new EdgeError("forbidden", "rider token lacks a usable id or city");
    }
    return { riderId: identity.sub, city: identity.city };
  } catch (error) {
    throw toConnectError(error);
  }
}
