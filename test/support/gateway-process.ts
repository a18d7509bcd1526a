import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./redis-server";
import { TEST_JWT_SECRET } from "./tokens";
import { waitUntil } from "./wait";

export interface GatewayProcess {
  readonly url: string;
  readonly child: Subprocess<"ignore", "pipe" | "ignore", "inherit">;
}

const living = new Set<Subprocess>();
// A test file that dies before its afterAll leaves no gateway behind.
process.once("exit", () => {
  for (const child of living) child.kill(9);
});

/**
 * A real gateway process (`gateway/main.ts`) on a free port, for tests that
 * kill -9 it; resolves once it answers /readyz. Stop it with kill (9 or 15)
 * and await `child.exited`. `stdout: "pipe"` to read its log lines.
 */
export async function startGatewayProcess(
  env: Record<string, string>,
  options: { stdout?: "pipe" | "ignore" } = {},
): Promise<GatewayProcess> {
  const port = await freePort();
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "../../gateway/main.ts")], {
    env: {
      ...process.env,
      JWT_SECRET: TEST_JWT_SECRET,
      GATEWAY_PORT: String(port),
      RATE_LIMIT_REQUESTS: "100000",
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
      ...env,
    },
    stdin: "ignore",
    stdout: options.stdout ?? "ignore",
    stderr: "inherit",
  });
  living.add(child);
  child.exited.then(() => living.delete(child));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    () =>
      fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
    15_000,
    "gateway ready",
  );
  return { url, child };
}
