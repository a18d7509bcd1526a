import { connect } from "node:net";

/**
 * Sends one HTTP/1.1 request (`head` lines, then `body`) over a bare socket
 * and returns once the server has taken it in: its bytes reached the kernel
 * before a `/healthz` on a second connection was asked, and that one was
 * answered. `outcome` resolves with the answer's status line, or "closed
 * unanswered".
 */
export async function sendRequestLeftInFlight(
  port: number,
  head: string[],
  body = "",
): Promise<{ outcome: Promise<string> }> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const outcome = new Promise<string>((resolve) => {
    socket.once("data", (chunk: Buffer) => resolve(chunk.toString().split("\r\n")[0] ?? ""));
    socket.once("close", () => resolve("closed unanswered"));
    socket.on("error", () => undefined);
  });
  const request = [...head, `Host: 127.0.0.1:${port}`, "", body].join("\r\n");
  await new Promise<void>((resolve, reject) =>
    socket.write(request, (error) => (error ? reject(error) : resolve())),
  );
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  if (!health.ok) throw new Error(`/healthz answered ${health.status}`);
  return { outcome };
}
