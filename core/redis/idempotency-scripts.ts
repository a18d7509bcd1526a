import { notReplicated } from "./acked-writes";
import type { RedisConnection } from "./client";
import { keys } from "./keys";
import type { RedisClient } from "./scripts";

export type IdempotencyStart =
  | { readonly kind: "started" | "mismatch" }
  | { readonly kind: "in_flight"; readonly leaseLeftMs: number }
  | { readonly kind: "replay"; readonly status: number; readonly body: string };

/** One attempt at an idempotent request: `owner` is unique to the attempt. */
export interface IdempotencyClaim {
  readonly customerId: string;
  readonly key: string;
  readonly requestHash: string;
  readonly owner: string;
}

/** begin-idempotent.lua: claim the key for `leaseMs`, or learn what the first request with it did. */
export async function beginIdempotent(
  client: RedisClient,
  claim: IdempotencyClaim,
  leaseMs: number,
): Promise<IdempotencyStart> {
  const [kind, status, body] = (await client.beginIdempotent(
    keys.idempotency(claim.customerId, claim.key),
    claim.requestHash,
    claim.owner,
    leaseMs,
  )) as [string, (string | number)?, string?];
  if (kind === "replay") return { kind, status: Number(status), body: body ?? "" };
  if (kind === "in_flight") return { kind, leaseLeftMs: Math.max(0, Number(status)) };
  if (kind === "started" || kind === "mismatch") return { kind };
  throw new Error(`unexpected begin-idempotent status ${kind}`);
}

/** renew-idempotent.lua: extend this attempt's lease; false once it is no longer this attempt's. */
export async function renewIdempotent(
  client: RedisClient,
  claim: IdempotencyClaim,
  leaseMs: number,
): Promise<boolean> {
  const result = await client.renewIdempotent(
    keys.idempotency(claim.customerId, claim.key),
    claim.owner,
    leaseMs,
  );
  return result === "ok";
}

/**
 * finish-idempotent.lua: store the response for replay, or release the key
 * (`status` 0). A stored response is kept only once the connection's
 * required replicas have it, so a replay survives a failover.
 */
export async function finishIdempotent(
  connection: RedisConnection,
  claim: IdempotencyClaim,
  response: { status: number; body: string; keepMs: number },
): Promise<boolean> {
  const key = keys.idempotency(claim.customerId, claim.key);
  const { result, replicated } = await connection.acked.run(key, (target) =>
    target.finishIdempotent(key, claim.owner, response.status, response.body, response.keepMs),
  );
  if (result === "ok" && response.status !== 0 && !replicated) throw notReplicated();
  return result === "ok";
}
