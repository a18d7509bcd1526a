import { connect, type Socket } from "node:net";

/**
 * HTTP/2 spoken by hand over a raw TCP socket, for clients no library would
 * be: one that never finishes the preface, ignores SETTINGS, never answers
 * a PING, or stops half way through a frame.
 */

export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7 };
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;

export interface H2Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInteger(value: number, prefixBits: number, firstByte = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const bytes = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

/** A header block of literal fields without indexing, new names, no Huffman. */
export function hpackBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    parts.push(Buffer.from([0x00, ...hpackInteger(name.length, 7)]), Buffer.from(name));
    parts.push(Buffer.from(hpackInteger(value.length, 7)), Buffer.from(value));
  }
  return Buffer.concat(parts);
}

/** The HEADERS frame of a gRPC call on `streamId`, request side left open. */
export function grpcHeadersFrame(streamId: number, path: string, token: string): Buffer {
  const block = hpackBlock({
    ":method": "POST",
    ":scheme": "http",
    ":path": path,
    ":authority": "127.0.0.1",
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  return h2Frame(FRAME.HEADERS, END_HEADERS, streamId, block);
}

export function dataFrame(streamId: number, payload: Buffer, endStream = false): Buffer {
  return h2Frame(FRAME.DATA, endStream ? END_STREAM : 0, streamId, payload);
}

/** A raw connection that collects the frames the server sends and tells when it closed. */
export interface RawH2Connection {
  readonly socket: Socket;
  readonly frames: H2Frame[];
  /** Resolves (with ms since connect) when the server closed the connection. */
  readonly closed: Promise<number>;
  /** Resolves with the first frame matching `match` (already received or to come). */
  frame(match: (frame: H2Frame) => boolean, timeoutMs?: number): Promise<H2Frame>;
  /** Writes the preface and an empty SETTINGS; answers the server's SETTINGS with an ACK. */
  handshake(): void;
  /** Whether PINGs get their ACK (a vanished phone's do not). */
  answerPings: boolean;
  destroy(): void;
}

export async function openRawH2(port: number, host = "127.0.0.1"): Promise<RawH2Connection> {
  const socket = connect(port, host);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => undefined);
  const openedAt = performance.now();
  const frames: H2Frame[] = [];
  const waiters = new Set<() => void>();
  let pending = Buffer.alloc(0);
  let handshaking = false;
  const connection: RawH2Connection = {
    socket,
    frames,
    closed: new Promise((resolve) => {
      socket.once("close", () => {
        for (const wake of waiters) wake();
        resolve(performance.now() - openedAt);
      });
    }),
    answerPings: true,
    async frame(match, timeoutMs = 5_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const found = frames.find(match);
        if (found) return found;
        const left = deadline - performance.now();
        if (socket.destroyed || left <= 0) throw new Error("frame not received");
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          const wake = () => {
            clearTimeout(timer);
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
        });
      }
    },
    handshake() {
      handshaking = true;
      socket.write(Buffer.concat([H2_PREFACE, h2Frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
    },
    destroy() {
      socket.destroy();
    },
  };
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const frame: H2Frame = {
        type: pending[3] as number,
        flags: pending[4] as number,
        streamId: pending.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(pending.subarray(9, 9 + length)),
      };
      pending = pending.subarray(9 + length);
      frames.push(frame);
      if (handshaking && frame.type === FRAME.SETTINGS && !(frame.flags & ACK)) {
        socket.write(h2Frame(FRAME.SETTINGS, ACK, 0, Buffer.alloc(0)));
      }
      if (connection.answerPings && frame.type === FRAME.PING && !(frame.flags & ACK)) {
        socket.write(h2Frame(FRAME.PING, ACK, 0, frame.payload));
      }
    }
    for (const wake of [...waiters]) wake();
  });
  return connection;
}

/** The error code of a GOAWAY or RST_STREAM frame. */
export function errorCodeOf(frame: H2Frame): number {
  return frame.type === FRAME.GOAWAY
    ? frame.payload.readUInt32BE(4)
    : frame.payload.readUInt32BE(0);
}
