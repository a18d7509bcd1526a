import type { Logger } from "pino";
import { keys, ORDER_PARTITIONS } from "../core/redis/keys";
import { holdLease, processHolder, releaseLease } from "../core/redis/leases";
import type { RedisClient } from "../core/redis/scripts";

/** A relay silent this many lease lengths is dropped from the registry. */
const FORGET_AFTER_LEASES = 20;

/** FNV-1a (32 bit): the rendezvous score of a node for a partition. */
function score(node: string, partition: number): number {
  let hash = 0x811c9dc5;
  const text = `${node}/${partition}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The partitions `node` should relay among `nodes` (every gateway computes
 * the same answer from the same sorted list): rendezvous hashing with a
 * bounded load. Each partition goes to its highest-scoring node that has
 * fewer than ceil(partitions / nodes) already, so every node gets a fair
 * share and a node joining or leaving moves about one share, not all.
 */
export function fairShare(nodes: readonly string[], partitions: number, node: string): number[] {
  if (!nodes.includes(node)) return [];
  const cap = Math.ceil(partitions / nodes.length);
  const load = new Map(nodes.map((n) => [n, 0]));
  const mine: number[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const ranked = [...nodes].sort(
      (a, b) => score(b, partition) - score(a, partition) || (a < b ? -1 : 1),
    );
    const owner = ranked.find((n) => (load.get(n) ?? 0) < cap) ?? node;
    load.set(owner, (load.get(owner) ?? 0) + 1);
    if (owner === node) mine.push(partition);
  }
  return mine;
}

export interface PartitionLeases {
  /** Beats, re-reads the live relays, gives back what is no longer ours, takes or renews our share. */
  rebalance(): Promise<void>;
  /** Partitions held with at least `minLeftMs` of lease left (by this process's clock). */
  held(minLeftMs: number): number[];
  /**
   * Gives every lease back and leaves the registry (drain), so others take
   * over at once. A rebalance still waiting on Redis then sends nothing more:
   * its holds would land after the give-back and keep the partitions until
   * they lapse.
   */
  leave(): Promise<void>;
}

/**
 * The outbox partitions this gateway relays. Gateways heartbeat into
 * `outbox-relay:nodes`; each computes its fair share of the live ones and
 * holds a lease per partition (`outbox-lease:{p<n>}`, on the partition's
 * slot), so at most one gateway reads a partition at a time even while
 * views of the registry differ. A dead gateway's leases expire after
 * `leaseMs` and its share is taken over at the others' next rebalance.
 *
 * A lease's holder is `<node id> <instance token>`, the token random per
 * process: two gateways given the same node id (a copied config) are one
 * registry member and compute the same share, but only one of them can take
 * or renew each lease, so neither relays a partition the other holds. A
 * gateway restarted after a crash is a new holder too: it takes its old
 * share back once those leases lapse, as any other gateway would. A gateway
 * that, one lease length after it started (when a crashed predecessor's
 * leases have lapsed), still finds part of its share held under its own
 * node id logs it once: a live twin, which relays that part alone.
 */
export function createPartitionLeases(options: {
  client: RedisClient;
  nodeId: string;
  leaseMs: number;
  logger: Logger;
  partitions?: number;
  now?: () => number;
}): PartitionLeases {
  const {
    client,
    nodeId,
    leaseMs,
    logger,
    partitions = ORDER_PARTITIONS,
    now = Date.now,
  } = options;
  // partition → when the lease runs out, measured from before it was asked for.
  const expiries = new Map<number, number>();
  const holder = processHolder(nodeId);
  const createdAt = now();
  let twinLogged = false;
  let left = false;

  async function release(partition: number): Promise<void> {
    expiries.delete(partition);
    await releaseLease(client, keys.outboxLease(partition), holder);
  }

  /** Logs once if another process holds leases of our share under our node id. */
  async function logTwin(refused: number[]): Promise<void> {
    const holders = await Promise.all(refused.map((p) => client.get(keys.outboxLease(p))));
    const twin = holders.find((other) => other?.startsWith(`${nodeId} `) && other !== holder);
    if (!twin) return;
    twinLogged = true;
    logger.warn(
      { nodeId, holder, twin },
      "another gateway relays under this GATEWAY_NODE_ID: each holds only the leases it took (give each gateway its own id)",
    );
  }

  return {
    async rebalance() {
      // Checked after each reply: leave() may have run while this rebalance waited.
      if (left) return;
      const startedAt = now();
      await client.zadd(keys.outboxRelays(), startedAt, nodeId);
      if (left) return;
      await client.zremrangebyscore(
        keys.outboxRelays(),
        "-inf",
        startedAt - FORGET_AFTER_LEASES * leaseMs,
      );
      if (left) return;
      const live = await client.zrangebyscore(keys.outboxRelays(), startedAt - leaseMs, "+inf");
      if (left) return;
      const share = new Set(fairShare([...live].sort(), partitions, nodeId));
      for (const partition of [...expiries.keys()])
        if (!share.has(partition)) await release(partition);
      if (left) return;
      const outcomes = await Promise.all(
        [...share].map(async (partition) => ({
          partition,
          outcome: await holdLease(client, keys.outboxLease(partition), holder, leaseMs),
        })),
      );
      // Holds sent before leave()'s give-back are released by it, in order on the connection.
      if (left) return;
      for (const { partition, outcome } of outcomes) {
        if (outcome === "held") expiries.delete(partition);
        else expiries.set(partition, startedAt + leaseMs);
      }
      const refused = outcomes.filter(({ outcome }) => outcome === "held");
      if (!twinLogged && refused.length > 0 && startedAt - createdAt > leaseMs)
        await logTwin(refused.map((o) => o.partition));
    },
    held(minLeftMs) {
      const until = now() + minLeftMs;
      return [...expiries].filter(([, expiry]) => expiry > until).map(([partition]) => partition);
    },
    async leave() {
      left = true;
      await Promise.all([...expiries.keys()].map(release));
      await client.zrem(keys.outboxRelays(), nodeId);
    },
  };
}
