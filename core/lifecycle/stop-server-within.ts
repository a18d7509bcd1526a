import { settleWithin } from "./settle-within";

/**
 * Stops a Bun server: no new connections, and the requests under way get
 * `ms` to finish; past that the rest are closed unanswered. Bun's own
 * `stop()` waits for every request forever, so one handler stuck on a
 * backing store that hangs (Redis frozen: its commands have no deadline)
 * would hold a drain until its cut. Resolves true when everything finished
 * in time.
 */
export async function stopServerWithin(
  server: { stop(closeActiveConnections?: boolean): Promise<void> },
  ms: number,
): Promise<boolean> {
  const finished = await settleWithin(
    server.stop().then(() => true),
    ms,
    false,
  );
  if (!finished) await server.stop(true);
  return finished;
}
