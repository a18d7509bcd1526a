import HashRing from "hashring";
import type { Logger } from "pino";
import type { RedisConnection } from "../redis/client";
import { keys } from "../redis/keys";

export interface TrackingNode {
  readonly id: string;
  readonly url: string;
}

export interface TrackingRing {
  /** The node that owns an order, or undefined while no node is alive. */
  ownerOf(orderId: string): TrackingNode | undefined;
  /**
   * The owner as of the tick now running, for a lookup that sends a client
   * somewhere: a ring whose timer has not read that tick yet (late on a
   * loaded host) reads it first, so the answer never names a node that left
   * at this tick. No Redis call otherwise; Redis unreachable: the last
   * tick's answer, the best there is.
   */
  currentOwnerOf(orderId: string): Promise<TrackingNode | undefined>;
  nodes(): readonly TrackingNode[];
  /**
   * Reads the registry for the tick now running, unless that tick was read
   * already (membership is what a tick's first read saw); resolves true
   * when membership changed.
   */
  refresh(): Promise<boolean>;
  /** True when the ring was read for the tick now running (false between a tick's start and its read). */
  isCurrent(): boolean;
  /** The start of the last tick read (wall-clock ms), -Infinity before the first read. */
  readTick(): number;
  /** Resolves at the middle of a tick, as far as can be from any ring's refresh. */
  quietMoment(): Promise<void>;
  stop(): void;
}

/**
 * The consistent-hash ring (ketama, via hashring) over the tracking nodes
 * whose heartbeat is fresh. Every tracking node and every gateway builds it
 * from the same sorted registry, so they agree on each order's owner.
 *
 * They also agree in time. Time is cut into ticks of `refreshMs` on the wall
 * clock, the same on every process, and membership is a function of the
 * tick, not of the moment a process happens to read: a node is in the ring
 * of tick T when its last heartbeat is no older than T - ttlMs. Every ring
 * re-reads just after each tick starts, so a node that died leaves every
 * ring at the same tick (within the hosts' clock skew and timer delays),
 * and no customer is sent back and forth between two rings that disagree.
 * A join is written at a quiet moment, mid-tick, so that every ring sees
 * it at the next tick; a drain records the node's last heartbeat so that
 * it is out from a tick chosen ahead, whenever a ring reads. What is left is
 * the few milliseconds between the first and the last ring's read of a
 * tick; a node about to send a watcher away on a ring that is not yet
 * current reads it first (isCurrent).
 *
 * A node listed with an old heartbeat (it died, or left) is out. A node this
 * ring saw alive that is missing from the registry altogether stays in until
 * the last heartbeat seen of it is older than the TTL too: Redis restarted
 * empty (or failed over and lost writes) until the nodes beat again, and
 * the ring must not reshuffle every order over that gap.
 */
export function createTrackingRing(options: {
  connection: RedisConnection;
  /** A node whose last heartbeat is older than this is out of the ring. */
  ttlMs: number;
  /** The tick: must be the same on every node and gateway. */
  refreshMs: number;
  logger: Logger;
  onChange?: (nodes: readonly TrackingNode[]) => void;
  now?: () => number;
}): TrackingRing {
  const { connection, ttlMs, refreshMs, logger, onChange, now = Date.now } = options;
  // Reads happen this far into a tick, so a timer that fires a little early
  // still reads the tick it was meant for.
  const readOffsetMs = Math.max(1, Math.floor(refreshMs / 10));
  let members: TrackingNode[] = [];
  let ring: HashRing | undefined;
  let signature = "";
  let readForTick = Number.NEGATIVE_INFINITY;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // What this ring last saw of each member: its heartbeat and URL.
  const seen = new Map<string, { beatMs: number; url: string }>();

  const tickStart = (at: number) => at - (at % refreshMs);

  // The read under way, shared by every caller of its tick.
  let reading: { tick: number; changed: Promise<boolean> } | undefined;

  function refresh(): Promise<boolean> {
    const tick = tickStart(now());
    // One read per tick: membership is what the tick's first read saw.
    if (tick <= readForTick) return Promise.resolve(false);
    if (reading?.tick === tick) return reading.changed;
    const changed = read(tick).finally(() => {
      if (reading?.tick === tick) reading = undefined;
    });
    reading = { tick, changed };
    return changed;
  }

  async function read(tick: number): Promise<boolean> {
    const { client } = connection;
    const listed = await client.zrange(keys.trackingNodes(), "0", "-1", "WITHSCORES");
    const beats = new Map<string, number>();
    for (let i = 0; i < listed.length; i += 2) beats.set(listed[i] ?? "", Number(listed[i + 1]));
    // Missing from the registry: the heartbeat this ring saw last stands until it is stale too.
    for (const [id, last] of seen) if (!beats.has(id)) beats.set(id, last.beatMs);
    const ids = [...beats].filter(([, beatMs]) => beatMs >= tick - ttlMs).map(([id]) => id);
    const urls = ids.length > 0 ? await client.hmget(keys.trackingNodeUrls(), ...ids) : [];
    // Another read of this tick (or a newer one) finished first.
    if (tick <= readForTick) return false;
    readForTick = tick;
    const live = ids
      .map((id, index) => ({ id, url: urls[index] || seen.get(id)?.url || "" }))
      .filter((node) => node.url !== "")
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    seen.clear();
    for (const node of live) seen.set(node.id, { beatMs: beats.get(node.id) ?? 0, url: node.url });
    const next = live.map((node) => `${node.id}=${node.url}`).join(",");
    if (next === signature) return false;
    signature = next;
    members = live;
    ring =
      live.length > 0
        ? new HashRing(
            live.map((node) => node.id),
            "md5",
            { compatibility: "ketama" },
          )
        : undefined;
    logger.info({ nodes: live.map((node) => node.id) }, "tracking ring changed");
    onChange?.(members);
    return true;
  }

  function schedule(): void {
    if (stopped) return;
    const at = now();
    timer = setTimeout(run, tickStart(at) + refreshMs + readOffsetMs - at);
    timer.unref?.();
  }

  async function run(): Promise<void> {
    try {
      await refresh();
    } catch (error) {
      logger.warn({ err: error }, "tracking ring refresh failed");
    }
    schedule();
  }

  schedule();

  function ownerOf(orderId: string): TrackingNode | undefined {
    const id = ring?.get(orderId);
    return members.find((node) => node.id === id);
  }

  return {
    ownerOf,
    async currentOwnerOf(orderId) {
      if (readForTick !== tickStart(now())) await refresh().catch(() => false);
      return ownerOf(orderId);
    },
    nodes: () => members,
    refresh,
    isCurrent: () => readForTick === tickStart(now()),
    readTick: () => readForTick,
    async quietMoment() {
      const phase = now() % refreshMs;
      const middle = refreshMs / 2;
      if (phase < middle - refreshMs / 4 || phase > middle + refreshMs / 4)
        await Bun.sleep((middle - phase + refreshMs) % refreshMs);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
