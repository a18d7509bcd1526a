import { readFileSync } from "node:fs";
import { canListen } from "../../demo/ports";

/** Linux's default start of the ephemeral range, for when /proc does not say. */
const EPHEMERAL_LOW_DEFAULT = 32_768;
/** freePort's picks: from here up to the ephemeral range. */
const PICK_LOW = 16_384;
const PICK_ATTEMPTS = 100;
const RETRY_ATTEMPTS = 5;

/**
 * Ports this process handed out, oldest first. A port is free only until its
 * user binds it, and callers pick several before binding any (a demo's five,
 * a cluster's nodes, starts run side by side): without this, two picks in
 * one run of a few hundred could be the same port (a birthday collision).
 */
const handedOut = new Set<number>();

/** Thrown by a harness start whose listener found its port taken: another process bound it first. */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    what: string,
  ) {
    super(`${what}: port ${port} is taken on 127.0.0.1`);
  }
}

/**
 * A port free on 127.0.0.1 now, picked at random below the kernel's ephemeral
 * range (ip_local_port_range), and none this process handed out recently. The
 * kernel hands out none of those ports by itself, neither to a listener on
 * port 0 nor as an outgoing connection's local port: between this pick and
 * its user's bind, another process takes it only by asking for that very
 * number. Picked by the kernel (port 0) it came from that range, and on a
 * loaded CI machine another process's connection or port-0 listener sometimes
 * had it first (EADDRINUSE, or that process answering on it).
 */
export function freePort(): Promise<number> {
  return freePortRun(1);
}

/** The first of `count` consecutive ports, each as freePort would hand it out (the demo's tracking nodes take +1, +2). */
export async function freePortRun(count: number): Promise<number> {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < PICK_ATTEMPTS; attempt++) {
    const base = PICK_LOW + Math.floor(Math.random() * (high - PICK_LOW - count + 1));
    const run = Array.from({ length: count }, (_, n) => base + n);
    if (run.some((port) => handedOut.has(port))) continue;
    // Taken before the checks resolve, so a pick running beside this one cannot have them too.
    for (const port of run) remember(port, high);
    if ((await Promise.all(run.map(canListen))).every(Boolean)) return base;
    for (const port of run) handedOut.delete(port);
  }
  throw new Error(`no free port found in ${PICK_LOW}-${high - 1}`);
}

/**
 * Runs `start` (which binds ports it got from freePort) again while it fails
 * with PortTakenError: another process bound a port between its pick and the
 * bind. Each try picks anew; any other failure is the caller's, thrown as is.
 */
export async function retryIfPortTaken<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= RETRY_ATTEMPTS) throw error;
    }
  }
}

/**
 * The failure of a server process that exited (with `code`) before it was
 * ready on `ports`: PortTakenError when another listener holds one now.
 */
export async function exitedBeforeReady(
  what: string,
  ports: number[],
  code: number | null,
): Promise<Error> {
  for (const port of ports) if (!(await canListen(port))) return new PortTakenError(port, what);
  return new Error(`${what} on port ${ports.join(", ")} exited (${code}) before it was ready`);
}

/** Remembers `port` as handed out, forgetting the oldest beyond a quarter of the pick range. */
function remember(port: number, high: number): void {
  handedOut.add(port);
  const limit = Math.floor((high - PICK_LOW) / 4);
  for (const oldest of handedOut) {
    if (handedOut.size <= limit) break;
    handedOut.delete(oldest);
  }
}

function ephemeralLow(): number {
  try {
    const low = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0],
    );
    // A range reaching down near PICK_LOW leaves no room below it: picks may then be
    // ephemeral ports, as every pick was before.
    return low > PICK_LOW + 1_000 ? low : EPHEMERAL_LOW_DEFAULT;
  } catch {
    // Not Linux: below Linux's default range is below the IANA one (49152-) too.
    return EPHEMERAL_LOW_DEFAULT;
  }
}
