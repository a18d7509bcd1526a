import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../test/support/free-port";

// `./edge demo` with a port already taken (another demo still running) stops
// at once naming the variable, before starting anything.
async function runDemo(env: Record<string, string>) {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "main.ts")], {
    env: {
      ...process.env,
      DEMO_RIDERS: "0",
      DEV_JWT_SECRET_FILE: join(mkdtempSync(join(tmpdir(), "demo-ports-")), "secret"),
      GATEWAY_PORT: String(await freePort()),
      INGEST_PORT: String(await freePort()),
      INGEST_HTTP_PORT: String(await freePort()),
      UPSTREAM_PORT: String(await freePort()),
      TRACKING_PORT: String(await freePort()),
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(timer);
  return { stdout, stderr: stderr.trim(), code };
}

test("a port another process holds: exit 2 with one line naming the variable, nothing started", async () => {
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const taken = (holder.address() as { port: number }).port;
  try {
    const result = await runDemo({ GATEWAY_PORT: String(taken) });
    expect(result).toEqual({
      stdout: "",
      stderr: `error: GATEWAY_PORT ${taken} is taken on 127.0.0.1 (another demo or tier running?): stop it, or set GATEWAY_PORT to a free port`,
      code: 2,
    });
  } finally {
    holder.close();
  }
}, 30_000);

test("two settings naming one port (a tracking node's +1 on the gateway's): exit 2 naming both, whatever holds the ports", async () => {
  // The test holds the ports it names (taken or free, the clash is the error), so no other
  // process's server can change the answer.
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const port = (holder.address() as { port: number }).port;
  // port + 1 too, unless another process already holds it (the case that used to fail).
  const next: Server = createServer();
  next.on("error", () => undefined);
  await new Promise<void>((resolve) => {
    next.once("error", () => resolve());
    next.listen(port + 1, "127.0.0.1", resolve);
  });
  try {
    const result = await runDemo({ GATEWAY_PORT: String(port + 1), TRACKING_PORT: String(port) });
    expect(result).toEqual({
      stdout: "",
      stderr: `error: TRACKING_PORT (+1) and GATEWAY_PORT are both ${port + 1}: give each its own port`,
      code: 2,
    });
  } finally {
    holder.close();
    if (next.listening) next.close();
  }
}, 30_000);
