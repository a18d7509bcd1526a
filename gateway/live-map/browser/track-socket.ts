// A followed order's WebSocket: the tracking client (clients/tracking-client)
// does the protocol (gateway lookup, moved, afterSeq, close-code rules,
// backoff with jitter); this feeds what it hears into the order's track.
import { followOrder, type TrackingClient } from "../../../clients/tracking-client/tracking-client";
import { applyEvent, type OrderTrack } from "./order-track";
import { showNotice } from "./page";
import { type MapEvent, mapEventOf } from "./tracking-events";

/**
 * Follows `track`'s order with the page's token (the page has no way to
 * refresh it: an expired token stops the socket and says so). `nodeUrl`,
 * when the page knows the owner, saves the first gateway lookup.
 */
export function followTrack(
  track: OrderTrack,
  options: { token: string; nodeUrl?: string; onEvent(event: MapEvent): void; onState?(): void },
): TrackingClient {
  const client = followOrder({
    orderId: track.orderId,
    token: options.token,
    ...(options.nodeUrl ? { nodeUrl: options.nodeUrl } : {}),
  });
  client.on("event", (event) => {
    const mapEvent = mapEventOf(event);
    if (!mapEvent) return;
    applyEvent(track, mapEvent);
    options.onEvent(mapEvent);
  });
  client.on("state", (state) => {
    track.socketState = state;
    options.onState?.();
  });
  client.on("stopped", ({ reason }) => {
    track.socketState = reason;
    if (reason === "token expired") showNotice("The token expired: open a fresh link.");
    options.onState?.();
  });
  return client;
}
