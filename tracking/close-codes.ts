/**
 * Every WebSocket close code the tracking tier uses, and what a client
 * should do. 4000-4999 are ours; 1008/1011/1012 are the RFC's.
 */
export const CLOSE = {
  /** The order is served by another node: reconnect to the `moved` frame's url. */
  moved: { code: 4001, reason: "moved", reconnect: true },
  /** The socket could not keep up with its frames: reconnect (with ?afterSeq=). */
  slowConsumer: { code: 4008, reason: "slow consumer", reconnect: true },
  /** The node is draining for a deploy: reconnect after the `moved` frame's url. */
  draining: { code: 1012, reason: "server restarting", reconnect: true },
  /** The token expired while watching: reconnect with a fresh token. */
  tokenExpired: { code: 4401, reason: "token expired", reconnect: true },
  /** Clients only listen; a frame from one is a protocol error. */
  unexpectedMessage: { code: 1008, reason: "clients do not send frames", reconnect: false },
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];
