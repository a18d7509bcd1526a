import { isIPv4, isIPv6 } from "node:net";
import type { RedisClient } from "../redis/scripts";
import { takeRateLimit } from "../redis/scripts";
import { createRefusalsUntilReset } from "./refusals-until-reset";

/** Addresses remembered as blocked on this node (oldest forgotten first past this many). */
const MAX_BLOCKED_ADDRESSES = 100_000;

export interface AuthFailureLimiter {
  /** True while this node remembers some address as blocked: only then does a request's address matter before its token is checked. */
  anyBlocked(): boolean;
  /** Seconds this address stays blocked (0: not blocked). No Redis: a Map lookup. */
  blockedFor(address: string): number;
  /** Counts one failed authentication; resolves to 0 while within the budget, else the seconds blocked. */
  recordFailure(address: string): Promise<number>;
}

/**
 * Failed token checks per client address, counted across the edge's nodes
 * in Redis (the same fixed-window script as the gateway's per-identity
 * limit; the gateway and the tracking nodes share one count per address). Past
 * `limit` failures in a window the address is blocked until the window
 * ends, and each node remembers that locally, so a flood of forged tokens
 * costs one Map lookup per request: no signature check, no Redis call.
 * Only failures reach Redis; a valid token costs nothing here. Addresses
 * are counted by `addressBucket`: an IPv6 client by its /64.
 */
export function createAuthFailureLimiter(options: {
  client: RedisClient;
  limit: number;
  windowMs: number;
  now?: () => number;
}): AuthFailureLimiter {
  const { client, limit, windowMs, now = Date.now } = options;
  const blocked = createRefusalsUntilReset({ maxEntries: MAX_BLOCKED_ADDRESSES, now });
  return {
    anyBlocked: () => blocked.size() > 0,
    blockedFor: (address) => Math.ceil(blocked.leftMs(addressBucket(address)) / 1000),
    async recordFailure(address) {
      const at = now();
      const bucket = addressBucket(address);
      const decision = await takeRateLimit(client, `authfail:${bucket}`, limit, windowMs, at);
      if (decision.remaining > 0) return 0;
      // The budget is spent: from the next request on, refuse here without asking Redis.
      blocked.remember(bucket, decision.resetAtMs);
      return decision.allowed ? 0 : Math.max(1, Math.ceil((decision.resetAtMs - at) / 1000));
    },
  };
}

/**
 * The caller's address: the TCP peer, or with a trusted header (opt-in, for
 * a node reachable only through a balancer) the header's rightmost entry,
 * the one the balancer itself wrote; entries to its left came from the
 * client and are ignored. The peer is asked for only when needed.
 */
export function clientAddress(
  trustedHeaderValue: string | null | undefined,
  peerAddress: () => string | undefined,
): string {
  const last = trustedHeaderValue?.split(",").at(-1)?.trim();
  return last || peerAddress() || "unknown";
}

const IPV6_GROUPS = 8;
/** The groups of an IPv6 /64 prefix: what one subscriber (a phone, a home, a cloud VM) is given. */
const PREFIX_GROUPS = 4;

/**
 * The unit a client address is limited by: an IPv4 address as it is; an
 * IPv6 address by its /64 (`2001:db8:1:2::/64`), since a phone or a VM is
 * handed a whole /64 and may send from any of its 2^64 addresses (one
 * budget per address would be no budget); an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, a dual-stack listener's view of an IPv4 peer) as
 * its IPv4 address, and so is one behind a NAT64 gateway's well-known
 * prefix (`64:ff9b::192.0.2.1`: that /64 holds every IPv4 address). A port
 * some balancers append (`192.0.2.1:51000`, `[2001:db8::1]:51000`, even
 * `[192.0.2.1]:51000` or an unbracketed `2001:db8::1:51000` that is no
 * address with it) is dropped: a client picks a new one per connection.
 * Anything else (`unknown`) as it is.
 */
export function addressBucket(address: string): string {
  const host = withoutPort(address);
  if (isIPv4(host)) return host;
  const plain = withoutZone(host);
  if (!isIPv6(plain)) return address;
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two groups.
  const tail = plain.slice(plain.lastIndexOf(":") + 1);
  const hex = isIPv4(tail) ? `${plain.slice(0, -tail.length)}${ipv4Groups(tail)}` : plain;
  const [head = "", rest] = hex.split("::");
  const headGroups = head ? head.split(":") : [];
  const restGroups = rest ? rest.split(":") : [];
  const zeros = rest === undefined ? 0 : IPV6_GROUPS - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill("0"), ...restGroups].map((group) =>
    Number.parseInt(group, 16),
  );
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  const nat64 =
    groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0);
  if (mapped || nat64) return groups.slice(6).map(ipv4Pair).join(".");
  return `${groups
    .slice(0, PREFIX_GROUPS)
    .map((group) => group.toString(16))
    .join(":")}::/64`;
}

/** The address without a port a balancer appended to it, if it has one. */
function withoutPort(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(address)?.[1];
  if (bracketed) return bracketed;
  // A whole IPv6 address keeps its last group: `2001:db8::1:5100` is an address (and with a
  // port or without, the same /64).
  if (isIPv6(withoutZone(address))) return address;
  const host = /^(.+):\d{1,5}$/.exec(address)?.[1];
  return host && (isIPv4(host) || isIPv6(withoutZone(host))) ? host : address;
}

const withoutZone = (address: string): string => address.split("%")[0] ?? address;

function ipv4Groups(ipv4: string): string {
  const [a = 0, b = 0, c = 0, d = 0] = ipv4.split(".").map(Number);
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

/** One IPv6 group as the two IPv4 octets it holds. */
function ipv4Pair(group: number): string {
  return `${group >> 8}.${group & 0xff}`;
}
