import { keys } from "./keys";
import type { RedisClient } from "./scripts";

export type IdempotencyStart =
  | { readonly kind: "started" | "mismatch" | "in_flight" }
  | { readonly kind: "replay"; readonly status: number; readonly body: string };

/** begin-idempotent.lua: claim the key, or learn what the first request with it did. */
export async function beginIdempotent(
  client: RedisClient,
  claim: { customerId: string; key: string; requestHash: string; inFlightMs: number },
): Promise<IdempotencyStart> {
  const [kind, status, body] = (await client.beginIdempotent(
    keys.idempotency(claim.customerId, claim.key),
    claim.requestHash,
    claim.inFlightMs,
  )) as [string, string?, string?];
  if (kind === "replay") return { kind, status: Number(status), body: body ?? "" };
  if (kind === "started" || kind === "mismatch" || kind === "in_flight") return { kind };
  throw new Error(`unexpected begin-idempotent status ${kind}`);
}

/** finish-idempotent.lua: store the response for replay, or release the key (`status` 0). */
export async function finishIdempotent(
  client: RedisClient,
  claim: { customerId: string; key: string; requestHash: string },
  response: { status: number; body: string; keepMs: number },
): Promise<boolean> {
  const result = await client.finishIdempotent(
    keys.idempotency(claim.customerId, claim.key),
    claim.requestHash,
    response.status,
    response.body,
    response.keepMs,
  );
  return result === "ok";
}
