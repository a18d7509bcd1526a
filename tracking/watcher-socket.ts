// One tracking socket's own state (Bun keeps it as `ws.data`): what it has
// been sent, whether it is congested or closing, and whether it shares its
// order's engine topic (order-topics.ts).
import type { ServerWebSocket } from "bun";
import type { Identity } from "../core/auth/identity";
import type { SeqMark } from "../core/position/rider-position";
import type { FrameFormat } from "../core/protocol/tracking-protocol";
import type { OutgoingFrame } from "./frames";

export interface WatcherData {
  readonly orderId: string;
  readonly format: FrameFormat;
  readonly identity: Identity;
  /** The identity's share of sockets this socket holds (released when it closes). */
  readonly quotaKey: string;
  /** `?afterSeq=`: the seq of the newest position the client already has. */
  readonly afterSeq?: bigint;
  /**
   * The newest position sent (its seq, and when the ingest received it):
   * positions not following it in the rider's order (a late snapshot, a
   * replay) are skipped. Until one is sent, the client's `afterSeq`, if any.
   * While the socket is in step, its order's mark stands for it.
   */
  lastPosition?: SeqMark;
  /** Whose seq `lastPosition` is (a rider's pings count their own seq; unknown after `?afterSeq=`). */
  seqRider?: string;
  /** Newest status version sent; a snapshot's status older than a live one is skipped. */
  statusVersion: number;
  /** A ping went out and no pong has come back yet. */
  awaitingPong: boolean;
  /** The newest position held back while the socket is congested. */
  pending?: OutgoingFrame;
  congestedSince?: number;
  closing: boolean;
  /**
   * Subscribed to its order's topic for its format: the order's live
   * positions reach it through the engine's own fan-out, not one send each.
   */
  inStep: boolean;
  /** Stops watching for the end of its token (exp, or its signing key revoked), which closes the socket. */
  cancelTokenEnd?: () => void;
}

export type WatcherSocket = ServerWebSocket<WatcherData>;
