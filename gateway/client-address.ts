import type { Context } from "hono";
import { getConnInfo } from "hono/bun";
import { clientAddress } from "../core/limits/auth-failure-limit";

/**
 * A request's client address (core's clientAddress): the TCP peer, or with
 * `trustedHeader` (GATEWAY_CLIENT_ADDRESS_HEADER) that header's rightmost entry.
 */
export function clientAddressReader(trustedHeader?: string): (c: Context) => string {
  return function readClientAddress(c) {
    return clientAddress(trustedHeader ? c.req.header(trustedHeader) : undefined, () => {
      try {
        return getConnInfo(c).remote.address;
      } catch {
        // Not served by Bun.serve (app.request in a unit test): one shared bucket.
        return undefined;
      }
    });
  };
}
