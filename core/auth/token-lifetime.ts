import type { KeyRef } from "./jwks-keys";

// setTimeout's longest delay: a longer one fires at once, so a token valid for longer re-arms.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why a token stopped being good while a session opened with it was still up. */
export type TokenEnd = "expired" | "revoked";

/** What a session ended by its token tells its client (a StreamPings status message). */
export const TOKEN_END_MESSAGE: Readonly<Record<TokenEnd, string>> = {
  expired: "token expired",
  revoked: "token revoked: its signing key is no longer in the identity provider's key set",
};

/** Tells of the identity provider revoking a signing key (core/auth/jwks-keys.ts). */
export interface KeyRevocations {
  /** Calls `onRevoked` once the key is gone from the provider's key set; returns the cancel. */
  whenRevoked(key: KeyRef, onRevoked: () => void): () => void;
}

/**
 * Calls `onEnd` once, when the token ends: the clock passes its `exp` (Unix
 * seconds), or the key that signed it (`key`, with a JWKS only) is revoked;
 * returns the cancel. A call that outlives the check made when it opened (a
 * tracking socket, a rider's StreamPings) ends with its token, or a token
 * that has stopped being issued (a rider let go) or whose key leaked would
 * keep working for as long as the connection stays up.
 */
export function whenTokenEnds(
  token: { readonly exp: number; readonly key?: KeyRef },
  revocations: KeyRevocations,
  onEnd: (end: TokenEnd) => void,
  now: () => number = Date.now,
): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const arm = () => {
    const left = token.exp * 1000 - now();
    timer = setTimeout(
      () => (token.exp * 1000 <= now() ? end("expired") : arm()),
      Math.min(Math.max(left, 0), MAX_TIMER_MS),
    );
    timer.unref();
  };
  let cancelRevoked = () => {};
  const cancel = () => {
    clearTimeout(timer);
    cancelRevoked();
  };
  function end(why: TokenEnd): void {
    cancel();
    onEnd(why);
  }
  arm();
  if (token.key) cancelRevoked = revocations.whenRevoked(token.key, () => end("revoked"));
  return cancel;
}
