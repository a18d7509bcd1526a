// Which orders the live map follows over WebSockets. Pure (no DOM), so the
// rule is tested on its own: a follow ends only when its order ends or the
// person picks another; the view's order (riders by last ping, which moves on
// every ping) never decides who is followed.

/** Statuses after which an order has nothing more to show. */
export const ENDED_STATUSES: ReadonlySet<string> = new Set(["DELIVERED", "CANCELLED"]);

export interface FollowCandidate {
  orderId: string;
  status: string;
  riderId?: string;
}

/** A follow whose order has left the view for this many polls in a row is dropped (it ended unseen). */
export const MISSING_POLLS = 30;

export interface FollowChange {
  start: string[];
  stop: string[];
}

/**
 * Keeps up to `max` followed orders, plus the one the person picked.
 * Free slots go to the orders seen first (their first poll), so the choice
 * does not move while nothing starts or ends.
 */
export function createFollowSet(max: number) {
  const followed = new Set<string>();
  const firstSeen = new Map<string, number>();
  const ended = new Set<string>();
  const missing = new Map<string, number>();
  let seen = 0;
  let picked: string | undefined;

  function stop(orderId: string, change: FollowChange): void {
    if (followed.delete(orderId)) change.stop.push(orderId);
  }

  return {
    /** The orders followed now, the picked one first. */
    get orderIds(): string[] {
      return [...followed].sort((a, b) => Number(b === picked) - Number(a === picked));
    },
    get picked(): string | undefined {
      return picked;
    },

    /** An order reached an end (a status frame, or the view said so): its follow stops at the next update. */
    markEnded(orderId: string): void {
      ended.add(orderId);
    },

    /** The person picked an order (or none): it is followed however many others are. */
    pick(orderId: string | undefined): FollowChange {
      const change: FollowChange = { start: [], stop: [] };
      if (picked && picked !== orderId && followed.size > max) stop(picked, change);
      picked = orderId;
      if (orderId && !followed.has(orderId)) {
        followed.add(orderId);
        change.start.push(orderId);
      }
      return change;
    },

    /** One poll's orders: stops ended follows, fills free slots with the longest-known live orders. */
    update(candidates: readonly FollowCandidate[]): FollowChange {
      const change: FollowChange = { start: [], stop: [] };
      const live: FollowCandidate[] = [];
      for (const candidate of candidates) {
        if (!firstSeen.has(candidate.orderId)) firstSeen.set(candidate.orderId, seen++);
        if (ENDED_STATUSES.has(candidate.status)) ended.add(candidate.orderId);
        else if (candidate.riderId && !ended.has(candidate.orderId)) live.push(candidate);
      }
      const present = new Set(candidates.map((candidate) => candidate.orderId));
      for (const orderId of followed) {
        const gone = present.has(orderId) ? 0 : (missing.get(orderId) ?? 0) + 1;
        missing.set(orderId, gone);
        if (orderId !== picked && (ended.has(orderId) || gone >= MISSING_POLLS)) {
          stop(orderId, change);
          missing.delete(orderId);
        }
      }
      const slots = () => max - [...followed].filter((orderId) => orderId !== picked).length;
      live.sort((a, b) => (firstSeen.get(a.orderId) ?? 0) - (firstSeen.get(b.orderId) ?? 0));
      for (const { orderId } of live) {
        if (slots() <= 0) break;
        if (followed.has(orderId)) continue;
        followed.add(orderId);
        change.start.push(orderId);
      }
      // Forget what can no longer come back, so a long-open tab stays small.
      for (const orderId of firstSeen.keys())
        if (!present.has(orderId) && !followed.has(orderId)) firstSeen.delete(orderId);
      for (const orderId of ended)
        if (!present.has(orderId) && !followed.has(orderId)) ended.delete(orderId);
      return change;
    },
  };
}
