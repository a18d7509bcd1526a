// The time a ride offer has left, as a rider app shows it: counted down from
// when the offer arrived on the phone, never from the phone's wall clock,
// which may be seconds off the server's (proto/README.md, "Offers").
import type { RideOffer } from "../../proto/gen/delivery/tracking/v1/ingest_pb";

/**
 * Starts an offer's countdown: call it as the offer arrives, in the
 * RiderClient's `offer` listener (emitted as the offer is read off the
 * stream). The function returned tells the time left (ms, 0 once it is up)
 * whenever asked: the offer's `expires_in_ms` less the time since, on the
 * device's monotonic clock. An offer from a server that predates
 * `expires_in_ms` (0, unset) is counted to `expires_at_ms` on the device's
 * wall clock, the best there is then.
 */
export function offerCountdown(offer: RideOffer): () => number {
  if (offer.expiresInMs === 0) {
    const expiresAtMs = Number(offer.expiresAtMs);
    return () => Math.max(0, expiresAtMs - Date.now());
  }
  const receivedAt = performance.now();
  return () => Math.max(0, offer.expiresInMs - (performance.now() - receivedAt));
}
