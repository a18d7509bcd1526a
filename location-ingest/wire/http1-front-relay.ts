import type { Socket } from "bun";

/**
 * The HTTP/1.1 front's byte relay: each chunk one socket reads is written
 * straight to the other; what the kernel does not take (or all of it, while
 * the other socket is still opening) waits, and the sending socket is paused
 * until `flush` has written it.
 */

/** One socket of a relayed pair and the bytes waiting for it. */
export interface RelaySide<Data> {
  socket: Socket<Data> | undefined;
  /** Bytes for this side the kernel did not take yet; the other side is paused meanwhile. */
  pending: Buffer | undefined;
  /** The other side half-closed: end this one once `pending` is written. */
  ending: boolean;
}

export function relaySide<Data>(socket: Socket<Data> | undefined): RelaySide<Data> {
  return { socket, pending: undefined, ending: false };
}

/**
 * The most bytes waiting for one side: the sender is paused from its first
 * waiting byte, so only what a socket had already read comes on top (a few
 * read buffers, 512 KiB at most each); more is a relay gone wrong.
 */
const PENDING_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Writes `chunk` from `from` to `to`, keeping what waits and pausing `from`.
 * False when more than PENDING_MAX_BYTES wait (a paused socket may still
 * hand over what it had read): the caller cuts the connection.
 */
export function forward<Data>(chunk: Buffer, from: RelaySide<Data>, to: RelaySide<Data>): boolean {
  if (to.pending || !to.socket) {
    to.pending = to.pending ? Buffer.concat([to.pending, chunk]) : Buffer.from(chunk);
    from.socket?.pause();
    return to.pending.byteLength <= PENDING_MAX_BYTES;
  }
  const written = to.socket.write(chunk);
  if (written >= chunk.byteLength) return true;
  to.pending = Buffer.from(chunk.subarray(Math.max(0, written)));
  from.socket?.pause();
  return true;
}

/** `to` can take bytes again (connected, or drained): writes what waits, resumes `from`, then ends if asked. */
export function flush<Data>(to: RelaySide<Data>, from: RelaySide<Data>): void {
  const socket = to.socket;
  if (!socket) return;
  const pending = to.pending;
  if (pending) {
    const written = socket.write(pending);
    if (written < pending.byteLength) {
      to.pending = pending.subarray(Math.max(0, written));
      return;
    }
    to.pending = undefined;
    from.socket?.resume();
  }
  if (to.ending) socket.end();
}

/** The other side half-closed: end `to` once what waits for it is written. */
export function endAfterPending<Data>(to: RelaySide<Data>): void {
  to.ending = true;
  if (!to.pending) to.socket?.end();
}
