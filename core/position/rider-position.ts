/**
 * The one shape of a rider's position on its way through the edge: one
 * accepted GPS fix, who sent it and when it arrived. Field names are the
 * proto's (GeoPing, PositionEvent, LocationRecord), so each form made from
 * it (core/position/position-forms.ts) is a field-for-field copy.
 *
 * Number types: coordinates and the float fields as the proto has them
 * (speed, heading and accuracy are float32 there, so they hold float32
 * values here and JSON and binary carry the same number); times are Unix ms,
 * safe integers by the ingest's clock checks; `seq` is the app's uint64 and
 * stays a bigint end to end, never a JS number.
 */
export interface RiderPosition {
  readonly riderId: string;
  readonly city: string;
  readonly lat: number;
  readonly lng: number;
  readonly accuracyM: number;
  readonly speedMps: number;
  readonly headingDeg: number;
  /** When the phone took the fix (the phone's clock). */
  readonly recordedAtMs: number;
  readonly seq: bigint;
  /** When the ingest received it (the server's clock). */
  readonly receivedAtMs: number;
}

/** What the ordering rule compares: a position's seq and when the ingest received it. */
export interface SeqMark {
  readonly seq: bigint;
  readonly receivedAtMs: number;
}

/**
 * The per-rider ordering rule (proto/README.md, "seq"): a position follows
 * `last` when its seq is higher, or when `last` was received more than
 * `restartAfterMs` (the live-age bound) before it. The second clause is a
 * restart: an app that lost its seq (a reinstall, a bug that sent 2^64-1)
 * is refused for at most that long after its last accepted ping, never
 * locked out. The ingest's session, its Redis write
 * (store-rider-positions.lua) and the tracking tier's watchers apply it alike.
 */
export function followsInOrder(next: SeqMark, last: SeqMark, restartAfterMs: number): boolean {
  return next.seq > last.seq || next.receivedAtMs - last.receivedAtMs > restartAfterMs;
}
