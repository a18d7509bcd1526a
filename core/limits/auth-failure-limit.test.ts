import { expect, test } from "bun:test";
import { addressBucket, clientAddress } from "./auth-failure-limit";

test("addressBucket: IPv4 as it is, IPv6 by its /64 however it is spelled, IPv4-mapped and NAT64 as IPv4, a balancer's port dropped", () => {
  expect(addressBucket("203.0.113.7")).toBe("203.0.113.7");
  for (const spelling of [
    "2001:db8:a:b::1",
    "2001:0db8:000a:000b:0000:0000:0000:0001",
    "2001:DB8:A:B:ffff:1:2:3",
    "2001:db8:a:b::192.0.2.1",
    "2001:db8:a:b::1%eth0",
    "[2001:db8:a:b::1]:51000",
    "[2001:db8:a:b::2]",
  ])
    expect([spelling, addressBucket(spelling)]).toEqual([spelling, "2001:db8:a:b::/64"]);
  expect(addressBucket("::1")).toBe("0:0:0:0::/64");
  expect(addressBucket("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
  expect(addressBucket("::ffff:192.0.2.1")).toBe("192.0.2.1");
  expect(addressBucket("::ffff:c000:201")).toBe("192.0.2.1");
  expect(addressBucket("203.0.113.7:51000")).toBe("203.0.113.7");
  expect(addressBucket("[203.0.113.7]:51000")).toBe("203.0.113.7");
  // Unbracketed with a port: no address as it stands, one without its last part.
  for (const spelling of ["2001:db8:a:b::1:51000", "2001:db8:a:b:3:4:5:6:51000"])
    expect([spelling, addressBucket(spelling)]).toEqual([spelling, "2001:db8:a:b::/64"]);
  // A NAT64 gateway's prefix holds the whole IPv4 internet: its clients are their IPv4 ones.
  expect(addressBucket("64:ff9b::192.0.2.1")).toBe("192.0.2.1");
  expect(addressBucket("64:ff9b::c000:202")).toBe("192.0.2.2");
  expect(addressBucket("[64:ff9b::192.0.2.3]:443")).toBe("192.0.2.3");
  // Not an address with a port either: counted as it is.
  expect(addressBucket("host.example:51000")).toBe("host.example:51000");
  expect(addressBucket("unknown")).toBe("unknown");
});

test("clientAddress: the trusted header's rightmost entry (the balancer's), else the peer, asked only then", () => {
  let asked = 0;
  const peer = () => {
    asked++;
    return "198.51.100.9";
  };
  expect(clientAddress("203.0.113.66, 192.0.2.7", peer)).toBe("192.0.2.7");
  expect(asked).toBe(0);
  expect(clientAddress(" , ", peer)).toBe("198.51.100.9");
  expect(clientAddress(undefined, peer)).toBe("198.51.100.9");
  expect(clientAddress(null, () => undefined)).toBe("unknown");
});
