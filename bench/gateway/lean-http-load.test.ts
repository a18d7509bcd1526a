import { expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { runLeanLoad } from "./lean-http-load";

/**
 * A raw HTTP/1.1 server: answers every request with `answer(n)` (n counts
 * requests from 0), written in pieces of `piece` bytes, after `delayMs`.
 */
function rawServer(options: {
  answer: (n: number) => string;
  piece: number;
  delayMs?: (n: number) => number;
}): { listener: TCPSocketListener<{ head: string }>; received: () => number } {
  let received = 0;
  const send = (socket: Socket<{ head: string }>, bytes: string) => {
    for (let at = 0; at < bytes.length; at += options.piece)
      socket.write(bytes.slice(at, at + options.piece));
  };
  const listener = Bun.listen<{ head: string }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { head: "" };
      },
      data(socket, data) {
        socket.data.head += data.toString("latin1");
        for (;;) {
          const end = socket.data.head.indexOf("\r\n\r\n");
          if (end < 0) break;
          socket.data.head = socket.data.head.slice(end + 4);
          const n = received++;
          const delay = options.delayMs?.(n) ?? 0;
          if (delay > 0) setTimeout(() => send(socket, options.answer(n)), delay);
          else send(socket, options.answer(n));
        }
      },
    },
  });
  return { listener, received: () => received };
}

const response = (status: number, body: string) =>
  `HTTP/1.1 ${status} X\r\nContent-Type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

test("counts every answer and its status, however the bytes are split, and never more than were sent", async () => {
  // Bodies of 0 to 300 bytes (one holds "\r\n\r\n"), every 7th a 503, written 5 bytes at a time.
  const server = rawServer({
    answer: (n) => response(n % 7 === 3 ? 503 : 200, "x\r\n\r\n".repeat(n % 60)),
    piece: 5,
  });
  try {
    const result = await runLeanLoad({
      url: `http://127.0.0.1:${server.listener.port}/anything`,
      seconds: 20,
      rate: 0,
      connections: 4,
      maxRequests: 700,
    });
    expect(server.received()).toBe(700);
    expect(result).toMatchObject({ sent: 700, answered: 700, non2xx: 100, errors: 0 });
    expect(result.latencyMs.p50).toBeGreaterThan(0);
  } finally {
    server.listener.stop(true);
  }
});

test("open loop: a slow server is charged from each request's due time, so queued requests count their wait", async () => {
  // One connection, 20 ms per answer, offered 200/s for 0.2 s: request i is
  // due at 5i ms and answered at about 20(i + 1) ms, so the last of the 40
  // waits some 600 ms, though the server never takes more than 20 ms.
  const server = rawServer({ answer: () => response(200, "ok"), piece: 1024, delayMs: () => 20 });
  try {
    const result = await runLeanLoad({
      url: `http://127.0.0.1:${server.listener.port}/`,
      seconds: 0.2,
      rate: 200,
      connections: 1,
    });
    expect(result).toMatchObject({ sent: 40, answered: 40, errors: 0 });
    expect(result.latencyMs.max).toBeGreaterThan(500);
    expect(result.latencyMs.p50).toBeGreaterThan(250);
  } finally {
    server.listener.stop(true);
  }
});

test("an answer it cannot follow (no Content-Length) is an error, not a hang", async () => {
  const server = rawServer({
    answer: (n) =>
      n === 2
        ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        : response(200, "ok"),
    piece: 1024,
  });
  try {
    const result = await runLeanLoad({
      url: `http://127.0.0.1:${server.listener.port}/`,
      seconds: 20,
      rate: 0,
      connections: 1,
      maxRequests: 5,
    });
    expect(result).toMatchObject({ sent: 3, answered: 2, errors: 1 });
  } finally {
    server.listener.stop(true);
  }
});
