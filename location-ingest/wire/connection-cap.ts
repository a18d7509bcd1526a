import type { Logger } from "pino";

/** How often the cap's log line may repeat while connections are evicted or refused. */
const CAP_LOG_EVERY_MS = 10_000;

/**
 * One port's cap on open connections, shared by the h2c guard and the
 * HTTP/1.1 guard, so the file-descriptor limit is never what refuses a
 * rider. At the cap a new connection takes the place of the one that has
 * waited longest without work: first one that has not yet started (no
 * HTTP/2 preface, no first request head), then the one idle (no rider call,
 * no request in flight) for longest. Only when every connection is working
 * is the new one refused. An attacker holding idle sockets therefore cannot
 * lock riders out: working connections are never evicted, and each new one
 * pushes out the stalest idler.
 *
 * The cap orders connections; the caller cuts them (`evict`) and counts.
 */
export function createConnectionCap<C>(options: {
  max: number;
  /** Names the port in the warning ("h2c", "HTTP/1.1"). */
  port: string;
  logger: Logger;
  /** Cuts a connection the cap chose to make room (it is already forgotten). */
  evict(connection: C): void;
  now?: () => number;
}) {
  const { max, port, logger, evict, now = Date.now } = options;
  const open = new Set<C>();
  /** Not started yet, oldest first: the first to evict. */
  const unstarted = new Set<C>();
  /** Without work, longest without it first: evicted next. */
  const idle = new Set<C>();
  let hits = { evicted: 0, refused: 0 };
  let loggedAt = Number.NEGATIVE_INFINITY;

  function report(kind: "evicted" | "refused"): void {
    hits[kind] += 1;
    const at = now();
    if (at - loggedAt < CAP_LOG_EVERY_MS) return;
    loggedAt = at;
    logger.warn(
      { port, maxConnections: max, ...hits },
      `${port} connection cap reached: idle connections evicted, new ones refused when none is idle`,
    );
    hits = { evicted: 0, refused: 0 };
  }

  function forget(connection: C): boolean {
    if (!open.delete(connection)) return false;
    unstarted.delete(connection);
    idle.delete(connection);
    return true;
  }

  return {
    /**
     * Makes room for a new connection: true when there is room (a victim
     * may have been evicted for it), false when it must be refused.
     */
    admit(): boolean {
      if (open.size < max) return true;
      const victim = first(unstarted) ?? first(idle);
      if (victim === undefined) {
        report("refused");
        return false;
      }
      report("evicted");
      forget(victim);
      evict(victim);
      return true;
    },
    /** A new connection: not started, idle. */
    add(connection: C): void {
      open.add(connection);
      unstarted.add(connection);
      idle.add(connection);
    },
    started(connection: C): void {
      unstarted.delete(connection);
    },
    working(connection: C): void {
      idle.delete(connection);
    },
    /** Its work ended: now the most recently idle. */
    idle(connection: C): void {
      if (!open.has(connection)) return;
      idle.delete(connection);
      idle.add(connection);
    },
    /** Forgets a closed connection; false when it was not open (already forgotten). */
    forget,
    has: (connection: C) => open.has(connection),
    get size() {
      return open.size;
    },
    [Symbol.iterator]: () => open.values(),
  };
}

function first<T>(set: Set<T>): T | undefined {
  for (const item of set) return item;
  return undefined;
}
