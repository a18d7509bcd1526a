import { connect, type Socket } from "node:net";

/**
 * A WebSocket client that completes the handshake and then never reads:
 * the phone on a dead network whose frames pile up on the server.
 */
export async function openStalledWebSocket(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<Socket> {
  const socket = await sendUpgradeRequest(port, path, headers);
  const head = await new Promise<string>((resolve) =>
    socket.once("data", (chunk: Buffer) => resolve(chunk.toString())),
  );
  if (!head.startsWith("HTTP/1.1 101"))
    throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
  socket.pause();
  return socket;
}

/** A server frame as read off the wire (server frames are never masked). */
export interface RawFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/**
 * A WebSocket client written against the bare TCP socket: it sends exactly
 * what the test says (any subprotocol offer, any frame header), keeps the
 * 101 response's head as text, and parses what the server sends but never
 * answers a ping by itself.
 */
export async function openRawWebSocket(
  port: number,
  path: string,
  headers: Record<string, string> = {},
) {
  const socket = await sendUpgradeRequest(port, path, headers);
  socket.on("error", () => {});
  let buffered = Buffer.alloc(0);
  let head: string | undefined;
  const frames: RawFrame[] = [];
  const wakers = new Set<() => void>();
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (head === undefined) {
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      head = buffered.subarray(0, end).toString();
      buffered = buffered.subarray(end + 4);
    }
    for (;;) {
      const frame = takeFrame(buffered);
      if (!frame) break;
      frames.push(frame.frame);
      buffered = buffered.subarray(frame.size);
    }
    for (const wake of wakers) wake();
  });
  closed.then(() => {
    for (const wake of wakers) wake();
  });
  await waitFor(() => head !== undefined, wakers, closed, 5_000);
  return {
    socket,
    /** The response's status line and headers. */
    head: head ?? "",
    frames,
    closed,
    /** The close frame's code, once one has arrived. */
    closeCode: (): number | undefined => {
      const close = frames.find((frame) => frame.opcode === 0x8);
      return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
    },
    /** Resolves once `condition` holds (checked as bytes arrive), rejecting after the deadline. */
    until: (condition: () => boolean, timeoutMs = 5_000) =>
      waitFor(condition, wakers, closed, timeoutMs),
  };
}

/** Connects and writes a WebSocket upgrade request with exactly `headers` added. */
async function sendUpgradeRequest(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  socket.write(
    [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ].join("\r\n"),
  );
  return socket;
}

function takeFrame(bytes: Buffer): { frame: RawFrame; size: number } | undefined {
  if (bytes.length < 2) return undefined;
  const opcode = (bytes[0] ?? 0) & 0x0f;
  let length = (bytes[1] ?? 0) & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    length = bytes.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    length = Number(bytes.readBigUInt64BE(2));
    offset = 10;
  }
  if (bytes.length < offset + length) return undefined;
  return {
    frame: { opcode, payload: bytes.subarray(offset, offset + length) },
    size: offset + length,
  };
}

async function waitFor(
  condition: () => boolean,
  wakers: Set<() => void>,
  closed: Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let isClosed = false;
  closed.then(() => {
    isClosed = true;
  });
  while (!condition()) {
    const remaining = deadline - Date.now();
    if (remaining <= 0 || isClosed) {
      if (condition()) return;
      throw new Error(isClosed ? "socket closed before the condition held" : "deadline passed");
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, remaining);
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      wakers.add(wake);
    });
  }
}

/** A client frame header (masked, as clients must) announcing `length` payload bytes. */
export function clientFrameHeader(opcode: number, length: number): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x80 | opcode;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  header.writeUInt32BE(0x0badf00d, 10);
  return header;
}
