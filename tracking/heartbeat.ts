import type { WatcherSocket } from "./watcher-socket";

/**
 * Pings every socket each `intervalMs`; a socket that has not answered the
 * previous ping by the next round is handed to `onSilent`. The engine's own
 * idle timeout cannot do this job: it restarts whenever the server sends,
 * so a phone that vanished without a FIN while its order streams positions
 * would look alive until its buffers filled. Every client stack answers
 * pings by itself (RFC 6455), so a live app needs no code for it.
 */
export function startHeartbeat(options: {
  intervalMs: number;
  sockets: () => Iterable<WatcherSocket>;
  onSilent: (ws: WatcherSocket) => void;
}): { stop(): void } {
  const { intervalMs, sockets, onSilent } = options;
  const timer = setInterval(() => {
    for (const ws of sockets()) {
      if (ws.data.closing) continue;
      if (ws.data.awaitingPong) {
        onSilent(ws);
        continue;
      }
      ws.data.awaitingPong = true;
      ws.ping();
    }
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
