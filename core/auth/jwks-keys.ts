import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { EdgeError } from "../errors/edge-error";
import type { AuthEvents, JwksFailureReason } from "./auth-metrics";

export interface JwksKeysOptions {
  readonly url: string;
  /** One fetch of the key set, headers and body, within this. */
  readonly timeoutMs: number;
  /** At most one fetch per this interval, however many unknown key ids arrive. */
  readonly refetchMinMs: number;
  /** Keys older than this are refreshed in the background (rotation), never dropped. */
  readonly refreshMs: number;
  readonly now?: () => number;
  /** Told of each failed fetch and each token refused for want of keys (the tier's metrics). */
  readonly events?: AuthEvents;
}

/** The key a token was verified with: its key id, or (a token without one) the key set as fetched then. */
export type KeyRef = { readonly kid: string } | { readonly generation: number };

export interface JwksKeys {
  /** For jose's jwtVerify. */
  readonly getKey: JWTVerifyGetKey;
  /** The current key set's generation: it changes whenever a fetch brings a different set. */
  generation(): number;
  /** True while the key a token was verified with is still in the current set. */
  holds(ref: KeyRef): boolean;
  /**
   * Calls `onRevoked` once, when a refresh brings a set without the key (at
   * once if the current set has lost it already); returns the cancel. While
   * any is registered, the set is refreshed every `refreshMs` even with no
   * token to verify: an open session checks none.
   */
  whenRevoked(ref: KeyRef, onRevoked: () => void): () => void;
}

type SessionEnds<K> = Map<K, Set<() => void>>;

/**
 * The identity provider's signing keys for jose, kept through its outages:
 * keys once fetched keep verifying whatever happens to the JWKS endpoint
 * (a failed refresh keeps the last good set); a token with a key id not in
 * the set triggers a fetch, at most one per `refetchMinMs` and shared by
 * concurrent callers, bounded by `timeoutMs`. When the set could not be
 * fetched, a token whose key is unknown gets 503 `auth_unavailable` (the
 * token may be fine) instead of 401, at once while fetches are held back.
 * A key the provider removes from its JWKS (revoked) is gone once a
 * refresh brings the new set: `holds` tells a cache of verified tokens, and
 * `whenRevoked` the sessions open with its tokens (a registry by key id,
 * nothing per message). A token without a key id counts as revoked when the
 * set changes at all: which of the keys verified it is not known.
 */
export function createJwksKeys(options: JwksKeysOptions): JwksKeys {
  const { url, timeoutMs, refetchMinMs, refreshMs, now = Date.now, events } = options;
  let keySet: JWTVerifyGetKey | undefined;
  let kids = new Set<string>();
  let keysJson = "";
  let generation = 0;
  let fetchedAt = 0;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let lastFailure: unknown;
  let pending: Promise<void> | undefined;
  const endsByKid: SessionEnds<string> = new Map();
  const endsByGeneration: SessionEnds<number> = new Map();
  let refreshTimer: ReturnType<typeof setInterval> | undefined;

  async function fetchKeySet(): Promise<void> {
    try {
      const response = await fetch(url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new JwksFetchError("status", `JWKS answered ${response.status}`);
      const jwks = (await response.json().catch((error: unknown) => {
        // A body cut off by the timeout is a timeout, not a malformed set.
        if (error instanceof DOMException && error.name === "TimeoutError") throw error;
        throw new JwksFetchError("malformed", "JWKS body is not JSON", { cause: error });
      })) as JSONWebKeySet;
      if (!Array.isArray(jwks?.keys))
        throw new JwksFetchError("malformed", "JWKS without a keys list");
      keySet = createLocalJWKSet(jwks);
      // A token without a key id was checked against whichever key matched: any change to the set re-checks it.
      const json = JSON.stringify(jwks.keys);
      if (json !== keysJson) generation++;
      keysJson = json;
      kids = new Set(jwks.keys.flatMap((key) => (typeof key.kid === "string" ? [key.kid] : [])));
      fetchedAt = now();
      lastFailure = undefined;
    } catch (error) {
      lastFailure = error;
      events?.jwksFetchFailed(failureReason(error));
      return;
    }
    endRevokedSessions();
  }

  function held(ref: KeyRef): boolean {
    return "kid" in ref ? kids.has(ref.kid) : ref.generation === generation;
  }

  function endRevokedSessions(): void {
    const ended: (() => void)[] = [];
    const take = <K>(ends: SessionEnds<K>, revoked: (id: K) => boolean) => {
      for (const [id, set] of ends)
        if (revoked(id)) {
          ends.delete(id);
          ended.push(...set);
        }
    };
    take(endsByKid, (kid) => !kids.has(kid));
    take(endsByGeneration, (openedAt) => openedAt !== generation);
    // Each in a task of its own, as each session's exp timer is: one that throws leaves the others to end.
    for (const end of ended) queueMicrotask(end);
    stopRefreshingWhenIdle();
  }

  function stopRefreshingWhenIdle(): void {
    if (endsByKid.size + endsByGeneration.size > 0 || !refreshTimer) return;
    clearInterval(refreshTimer);
    refreshTimer = undefined;
  }

  function register<K>(ends: SessionEnds<K>, id: K, onRevoked: () => void): () => void {
    const set = ends.get(id) ?? new Set<() => void>();
    ends.set(id, set);
    // A function of its own: the same callback registered twice is two sessions.
    const end = () => onRevoked();
    set.add(end);
    refreshTimer ??= setInterval(() => void refetch(), refreshMs);
    refreshTimer.unref();
    return () => {
      set.delete(end);
      if (set.size === 0 && ends.get(id) === set) ends.delete(id);
      stopRefreshingWhenIdle();
    };
  }

  /** Starts a fetch unless one runs or ran too recently; resolves when the running one ends. */
  function refetch(): Promise<void> {
    if (pending) return pending;
    if (now() - attemptedAt < refetchMinMs) return Promise.resolve();
    attemptedAt = now();
    pending = fetchKeySet().finally(() => {
      pending = undefined;
    });
    return pending;
  }

  const getKey: JWTVerifyGetKey = async (header, token) => {
    const known = keySet && (header.kid === undefined || kids.has(header.kid));
    if (known) {
      if (now() - fetchedAt > refreshMs) void refetch();
    } else {
      await refetch();
      if (!keySet || (header.kid !== undefined && !kids.has(header.kid) && lastFailure)) {
        events?.keysUnavailable();
        throw new EdgeError("auth_unavailable", "the identity provider's keys are unavailable", {
          cause: lastFailure,
          retryAfterSeconds: Math.max(1, Math.ceil(refetchMinMs / 1000)),
        });
      }
    }
    return (keySet as JWTVerifyGetKey)(header, token);
  };
  return {
    getKey,
    generation: () => generation,
    holds(ref) {
      // Cached tokens never reach getKey: they too must keep the set fresh, or a revoked key would never leave it.
      if (keySet && now() - fetchedAt > refreshMs) void refetch();
      return held(ref);
    },
    whenRevoked(ref, onRevoked) {
      if (!held(ref)) {
        let cancelled = false;
        queueMicrotask(() => cancelled || onRevoked());
        return () => {
          cancelled = true;
        };
      }
      return "kid" in ref
        ? register(endsByKid, ref.kid, onRevoked)
        : register(endsByGeneration, ref.generation, onRevoked);
    },
  };
}

/** A fetch that reached the endpoint and got an answer that is no key set. */
class JwksFetchError extends Error {
  constructor(
    readonly reason: "status" | "malformed",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A failed fetch's reason: its own, the timeout's (AbortSignal.timeout), else the network's. */
function failureReason(error: unknown): JwksFailureReason {
  if (error instanceof JwksFetchError) return error.reason;
  if (error instanceof DOMException && error.name === "TimeoutError") return "timeout";
  return "unreachable";
}
