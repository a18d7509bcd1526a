import type { Identity } from "../core/auth/identity";

/**
 * Open sockets per token identity on this node. Per node rather than
 * cluster-wide: every socket for one order lands on the order's owner (the
 * ring), so a customer's sockets for an order all count here, and a count
 * kept in memory costs no Redis round trip per upgrade and cannot leak
 * after a crash. A customer with orders on k nodes may hold k shares.
 */
export function createSocketQuota(limits: { perUser: number; perStaff: number }) {
  const open = new Map<string, number>();

  return {
    /**
     * Takes one socket for `identity`: the key to release it with, or
     * undefined when the identity already holds its share.
     */
    take(identity: Identity): string | undefined {
      const key = `${identity.role}:${identity.sub}`;
      const staff = identity.role === "dispatcher" || identity.role === "ops";
      const count = open.get(key) ?? 0;
      if (count >= (staff ? limits.perStaff : limits.perUser)) return undefined;
      open.set(key, count + 1);
      return key;
    },

    release(key: string): void {
      const count = (open.get(key) ?? 0) - 1;
      if (count > 0) open.set(key, count);
      else open.delete(key);
    },
  };
}

export type SocketQuota = ReturnType<typeof createSocketQuota>;
