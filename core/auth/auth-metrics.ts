import { Counter, type Registry } from "prom-client";

/** Why a fetch of the identity provider's key set failed: the `reason` label. */
export type JwksFailureReason = "timeout" | "unreachable" | "status" | "malformed";

/** What the JWKS keys report, as counters every tier exports (with a fetched JWKS only they move). */
export interface AuthEvents {
  /** A fetch of the key set failed; the last good set, if any, stays in use. */
  jwksFetchFailed(reason: JwksFailureReason): void;
  /** A token was answered 503 `auth_unavailable`: its key is unknown and the set could not be fetched. */
  keysUnavailable(): void;
}

/** The auth counters, on a tier's registry. */
export function createAuthMetrics(registry: Registry): AuthEvents {
  const registers = [registry];
  const fetchFailures = new Counter({
    name: "edge_auth_jwks_fetch_failures_total",
    help: "Fetches of the identity provider's key set (JWT_JWKS_URL) that failed, by reason: timeout, unreachable, status (not 2xx), malformed",
    labelNames: ["reason"] as const,
    registers,
  });
  const unavailable = new Counter({
    name: "edge_auth_keys_unavailable_total",
    help: "Tokens answered 503 auth_unavailable: signed with a key not in the set held, and the set could not be fetched",
    registers,
  });
  return {
    jwksFetchFailed: (reason) => fetchFailures.inc({ reason }),
    keysUnavailable: () => unavailable.inc(),
  };
}
