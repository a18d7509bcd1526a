import { createServer, type Socket } from "node:net";

/** How the next answers go wrong (or not). */
export type UpstreamMode =
  | "ok"
  | "slow-ok"
  | "status-500"
  | "not-json"
  | "truncated"
  | "wrong-shape"
  | "stall-after-headers"
  | "huge";

const GOOD_SEARCH = JSON.stringify({ restaurants: [{ id: "r1", name: "Good Food" }] });

/**
 * A raw HTTP/1.1 upstream on a free loopback port that answers the way
 * broken services do: HTML instead of JSON, a body cut short of its
 * Content-Length, the wrong shape, headers then silence, a huge body. It
 * records each request's first line and X-Request-Id.
 */
export async function startMisbehavingUpstream() {
  const state = { mode: "ok" as UpstreamMode };
  const requests: { line: string; requestId: string | undefined }[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let head = "";
    socket.on("data", (chunk) => {
      head += chunk;
      if (!head.includes("\r\n\r\n")) return;
      const [line = ""] = head.split("\r\n");
      const requestId = /\r\nx-request-id: *([^\r]*)/i.exec(head)?.[1];
      requests.push({ line, requestId });
      head = "";
      answer(socket, state.mode);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    requests,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function reply(socket: Socket, status: string, body: string, length = Buffer.byteLength(body)) {
  socket.write(
    `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n${body}`,
  );
}

function answer(socket: Socket, mode: UpstreamMode): void {
  switch (mode) {
    case "ok":
      reply(socket, "200 OK", GOOD_SEARCH);
      return;
    case "slow-ok":
      setTimeout(() => reply(socket, "200 OK", GOOD_SEARCH), 200);
      return;
    case "status-500":
      reply(socket, "500 Internal Server Error", '{"error":"boom"}');
      return;
    case "not-json":
      reply(socket, "200 OK", "<html>Service Temporarily Unavailable</html>");
      return;
    case "truncated":
      reply(socket, "200 OK", '{"restaurants":[{"id":', 200);
      socket.end();
      return;
    case "wrong-shape":
      reply(socket, "200 OK", '{"restaurants":"none today","id":7}');
      return;
    case "stall-after-headers":
      socket.write(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{",
      );
      return;
    case "huge":
      reply(socket, "200 OK", `{"restaurants":[],"pad":"${"x".repeat(200_000)}"}`);
      return;
  }
}
