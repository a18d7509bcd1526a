// A tiny client for mobile and web developers: follow one order's courier
// with nothing but fetch, WebSocket and the generated TrackingEvent type, so
// it runs unchanged in a browser or React Native. Either frame format reads
// with the generated type: binary frames with fromBinary, JSON frames (the
// proto3 JSON mapping) with fromJsonString.
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { reconnectRule, TRACKING_SUBPROTOCOLS } from "../../core/protocol/tracking-protocol";
import {
  type TrackingEvent,
  TrackingEventSchema,
} from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";

export interface OrderTracker {
  close(): void;
}

/**
 * Asks the gateway which tracking node owns the order, opens a WebSocket
 * there with protobuf (default) or JSON frames (the token travels as a
 * `bearer.` subprotocol, since browsers cannot set headers), follows `moved`
 * to the new owner, and reconnects with `?afterSeq=` after a drop so no
 * position is replayed.
 */
export async function trackOrder(options: {
  gatewayUrl: string;
  orderId: string;
  token: string;
  onEvent: (event: TrackingEvent) => void;
  frames?: "proto" | "json";
  reconnectAfterMs?: number;
}): Promise<OrderTracker> {
  const {
    gatewayUrl,
    orderId,
    token,
    onEvent,
    frames = "proto",
    reconnectAfterMs = 1_000,
  } = options;
  let afterSeq = 0n;
  let closed = false;
  let socket: WebSocket | undefined;

  async function ownerUrl(): Promise<string> {
    const response = await fetch(`${gatewayUrl}/v1/orders/${encodeURIComponent(orderId)}/track`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!response.ok) throw new Error(`track lookup failed: ${response.status}`);
    return ((await response.json()) as { url: string }).url;
  }

  function connect(url: string): void {
    if (closed) return;
    socket = new WebSocket(`${url}?afterSeq=${afterSeq}`, [
      TRACKING_SUBPROTOCOLS[frames],
      `bearer.${token}`,
    ]);
    socket.binaryType = "arraybuffer";
    let movedTo: string | undefined;
    socket.onmessage = (message) => {
      const event =
        typeof message.data === "string"
          ? // Fields added to TrackingEvent later must not break this client.
            fromJsonString(TrackingEventSchema, message.data, { ignoreUnknownFields: true })
          : fromBinary(TrackingEventSchema, new Uint8Array(message.data as ArrayBuffer));
      if (event.event.case === "position") afterSeq = event.event.value.seq;
      if (event.event.case === "moved")
        movedTo = `${event.event.value.url}/v1/orders/${encodeURIComponent(orderId)}/track`;
      onEvent(event);
    };
    socket.onclose = (event) => {
      if (closed) return;
      const rule = reconnectRule(event.code, movedTo);
      if (rule === "never") return;
      if (rule === "follow-moved" && movedTo) return connect(movedTo);
      setTimeout(() => {
        ownerUrl().then(connect, () => connect(url));
      }, reconnectAfterMs);
    };
  }

  connect(await ownerUrl());
  return {
    close() {
      closed = true;
      socket?.close();
    },
  };
}
