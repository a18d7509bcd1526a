// What a rider app gives a RiderClient and hears from it: its options and
// its events (clients/README.md, "Rider: RiderClient").
import type { Client } from "@connectrpc/connect";
import type {
  LocationIngestService,
  PingAck,
  RideOffer,
  UploadPingsResponse,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import type { BackoffOptions } from "../backoff";
import type { Locate } from "./fix-source";
import type { SeqStore } from "./seq-store";

export type RiderState = "connecting" | "streaming" | "uploading" | "offline" | "stopped";

export type RiderStopReason =
  /** close() was called. */
  | "closed"
  /** A newer StreamPings of this rider (this app restarted, or another device) holds the live position. */
  | "superseded"
  /** Unauthenticated, and no refreshToken, it failed, or it gave the refused token back. */
  | "token expired"
  /** As "token expired", when the stream ended `token revoked: ...` (its signing key was revoked). */
  | "token revoked"
  /** PermissionDenied: the token is not a rider's. */
  | "refused";

export interface RiderClientEvents {
  state: RiderState;
  /** Every ack of the live stream (next_interval_ms, last_accepted_seq, drops). */
  ack: PingAck;
  offer: RideOffer;
  /** The server's Reconnect (a drain): the client opens a new stream after afterMs. */
  reconnect: { afterMs: number; reason: string };
  /** A stream or upload failed; the client tries again after delayMs. */
  retrying: { error: unknown; delayMs: number };
  /** An offline backlog went up: how many fixes, and the ingest's answer. */
  uploaded: { sent: number; response: UploadPingsResponse };
  /** A backlog the ingest refused as a whole (InvalidArgument): dropped, so it cannot block the stream. */
  backlogDropped: { count: number; error: unknown };
  /** A ping was due and locate() had no fix (undefined, or `error`: it threw, rejected or timed out): none sent that interval. */
  noFix: { error?: unknown };
  stopped: { reason: RiderStopReason; error?: unknown };
}

export interface RiderClientOptions {
  /** A LocationIngestService client (connect-node's gRPC transport in Bun, connect-web in a browser). */
  ingest: Client<typeof LocationIngestService>;
  token: string;
  /**
   * Called on Unauthenticated (at the token's exp, or when its signing key is
   * revoked); resolves to a newly issued token, not one kept until its exp:
   * a revoked key's token is refused before then. The refused token handed
   * back stops the client rather than calling again.
   */
  refreshToken?: () => Promise<string>;
  seqStore: SeqStore;
  /**
   * The phone's current fix, asked for each time a ping is due (online or not),
   * at once or as a promise (the platforms' location APIs answer later);
   * undefined, or a throw or rejection, when it has none (GPS off, no fix
   * yet): that interval sends nothing and the stream stays open. The next
   * interval starts once it has answered, or after `locateTimeoutMs`; a call
   * still pending is waited on rather than made again (up to 5 timeouts).
   */
  locate: Locate;
  /** How long a pending locate() may take before its interval counts as a missed fix (default 10,000 ms). */
  locateTimeoutMs?: number;
  /** The interval until the first ack names one (ms; default 1,000). */
  firstIntervalMs?: number;
  /** Fixes kept while offline, the newest (default 20,000: one UploadPings call). */
  maxBacklog?: number;
  /** Fixes per UploadPings message (default 1,000: small enough for a slow link). */
  uploadChunk?: number;
  backoff?: Partial<BackoffOptions>;
}
