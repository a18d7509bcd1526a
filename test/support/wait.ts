/**
 * Polls `condition` until it holds, failing after `timeoutMs`. For states
 * with no event to wait on (a ring refresh, a Redis counter); where an event
 * exists, tests await the event instead.
 */
export async function waitUntil(
  condition: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await Bun.sleep(10);
  }
}
