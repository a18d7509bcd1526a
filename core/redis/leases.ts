import { randomUUID } from "node:crypto";
import type { RedisClient } from "./scripts";

export type LeaseOutcome = "taken" | "renewed" | "held";

/**
 * A lease holder name for this process: `<node id> <random token>`. Two
 * processes given one node id (a copied config, a restart before the old
 * process died) are then two holders, so only one of them can take or renew
 * each lease, while the node id stays readable in the lease's value.
 */
export const processHolder = (nodeId: string): string => `${nodeId} ${randomUUID()}`;

/**
 * hold-lease.lua: takes `lease` for `holder` if free, or renews it if the
 * holder has it already; "held" when another holder does. One holder at a
 * time; a holder that stops renewing loses it after `ttlMs`.
 */
export async function holdLease(
  client: RedisClient,
  lease: string,
  holder: string,
  ttlMs: number,
): Promise<LeaseOutcome> {
  return (await client.holdLease(lease, holder, ttlMs)) as LeaseOutcome;
}

/** release-lease.lua: gives the lease back at once if `holder` still has it; true when it did. */
export async function releaseLease(
  client: RedisClient,
  lease: string,
  holder: string,
): Promise<boolean> {
  return (await client.releaseLease(lease, holder)) === "released";
}
