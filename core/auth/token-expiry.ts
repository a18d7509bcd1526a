// setTimeout's longest delay: a longer one fires at once, so a token valid for longer re-arms.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `onExpired` once, when the clock passes `exp` (a token's expiry,
 * Unix seconds); returns the cancel. A call that outlives the check made
 * when it opened (a tracking socket, a rider's StreamPings) ends with its
 * token, or a token that has stopped being issued (a rider let go) would
 * keep working for as long as the connection stays up.
 */
export function whenTokenExpires(
  exp: number,
  onExpired: () => void,
  now: () => number = Date.now,
): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const arm = () => {
    const left = exp * 1000 - now();
    timer = setTimeout(
      () => (exp * 1000 <= now() ? onExpired() : arm()),
      Math.min(Math.max(left, 0), MAX_TIMER_MS),
    );
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
