import { connect, type Socket } from "node:net";

/**
 * A WebSocket client that completes the handshake and then never reads:
 * the phone on a dead network whose frames pile up on the server.
 */
export async function openStalledWebSocket(port: number, path: string): Promise<Socket> {
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
      "",
      "",
    ].join("\r\n"),
  );
  const head = await new Promise<string>((resolve) =>
    socket.once("data", (chunk: Buffer) => resolve(chunk.toString())),
  );
  if (!head.startsWith("HTTP/1.1 101"))
    throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
  socket.pause();
  return socket;
}
