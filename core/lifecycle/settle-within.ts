/**
 * `promise`'s value, or `late` when it has not settled within `ms`. The
 * timer is cleared either way, so a race that ended early leaves nothing
 * pending (a stray timer keeps a stopping process alive and fires later).
 * The promise itself runs on; a caller that gives up on it handles its
 * rejection if it can reject.
 */
export async function settleWithin<T, L>(promise: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<L>((resolve) => {
    timer = setTimeout(() => resolve(late), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
