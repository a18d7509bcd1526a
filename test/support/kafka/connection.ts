import type { Socket } from "node:net";

// Kafka's own default for socket.request.max.bytes.
const MAX_FRAME_BYTES = 100 * 1024 * 1024;

/**
 * Cuts a TCP byte stream into Kafka frames (int32 size, then that many
 * bytes), however the stream was chunked: a frame split over many chunks,
 * or many frames in one chunk.
 */
export class FrameSplitter {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Buffer[] = [];
    while (this.#pending.length >= 4) {
      const size = this.#pending.readInt32BE(0);
      if (size < 0 || size > MAX_FRAME_BYTES) throw new Error(`frame size ${size} is out of range`);
      if (this.#pending.length < 4 + size) break;
      frames.push(this.#pending.subarray(4, 4 + size));
      this.#pending = this.#pending.subarray(4 + size);
    }
    return frames;
  }
}

/**
 * Serves one client connection: each frame gets `answer`'s reply (already
 * size-prefixed) in request order, or none when it returns null. A frame
 * that `answer` rejects closes the connection, as a broker hangs up on a
 * request it cannot parse; the error goes to `onRefused`, never up the stack.
 */
export function serveConnection(
  socket: Socket,
  answer: (frame: Buffer) => Buffer | null,
  onRefused: (error: Error) => void,
): void {
  const splitter = new FrameSplitter();
  // Resets and aborts from clients are routine here (stop() destroys sockets).
  socket.on("error", () => socket.destroy());
  socket.on("data", (chunk: Buffer) => {
    try {
      for (const frame of splitter.push(chunk)) {
        const reply = answer(frame);
        if (reply) socket.write(reply);
      }
    } catch (error) {
      onRefused(error instanceof Error ? error : new Error(String(error)));
      socket.destroy();
    }
  });
}
