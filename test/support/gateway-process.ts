import { join } from "node:path";
import type { Subprocess } from "bun";
import { exitedBeforeReady, freePort, retryIfPortTaken } from "./free-port";
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
export function startGatewayProcess(
  env: Record<string, string>,
  options: { stdout?: "pipe" | "ignore" } = {},
): Promise<GatewayProcess> {
  return retryIfPortTaken(async () => startGatewayOn(await freePort(), env, options));
}

async function startGatewayOn(
  port: number,
  env: Record<string, string>,
  options: { stdout?: "pipe" | "ignore" },
): Promise<GatewayProcess> {
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
  let exitCode: number | undefined;
  void child.exited.then((code) => {
    exitCode = code;
    living.delete(child);
  });
  const url = `http://127.0.0.1:${port}`;
  // Not ready if it exited: a listener that is not this gateway may answer on its port.
  await waitUntil(
    async () =>
      exitCode !== undefined ||
      (await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )),
    15_000,
    "gateway ready",
  );
  if (exitCode !== undefined) throw await exitedBeforeReady("gateway process", [port], exitCode);
  return { url, child };
}
