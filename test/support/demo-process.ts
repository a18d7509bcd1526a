import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, freePortRun, PortTakenError, retryIfPortTaken } from "./free-port";

export interface RunningDemo {
  process: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the demo printed up to "Follow the first one". */
  printed: string;
  ports: Record<
    "GATEWAY_PORT" | "UPSTREAM_PORT" | "INGEST_PORT" | "INGEST_HTTP_PORT" | "TRACKING_PORT",
    number
  >;
  /** Where the demo kept its development JWT secret. */
  secretFile: string;
  gatewayUrl: string;
  /** The ops link the demo printed for the live map. */
  mapLink: string;
  opsToken: string;
  stop(): Promise<number>;
}

/**
 * Starts `demo/main.ts` on free ports with its own Redis and waits for its
 * banner; on other free ports while the demo refuses one as taken (another
 * process bound it after the pick).
 */
export function startDemo(env: Record<string, string> = {}): Promise<RunningDemo> {
  return retryIfPortTaken(() => startDemoOnce(env));
}

async function startDemoOnce(env: Record<string, string>): Promise<RunningDemo> {
  const ports = {
    GATEWAY_PORT: await freePort(),
    UPSTREAM_PORT: await freePort(),
    INGEST_PORT: await freePort(),
    INGEST_HTTP_PORT: await freePort(),
    // Its tracking nodes take +1 and +2.
    TRACKING_PORT: await freePortRun(3),
  };
  const secretFile = join(mkdtempSync(join(tmpdir(), "demo-secret-")), "dev-jwt-secret");
  const child = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "..", "demo", "main.ts")],
    {
      env: {
        ...process.env,
        ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
        DEMO_RIDERS: "30",
        LOG_LEVEL: "warn",
        REDIS_URL: "",
        JWT_SECRET: "",
        DEV_JWT_SECRET_FILE: secretFile,
        ...env,
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const reader = child.stdout.getReader();
  let printed = "";
  // Its tiers get 30 s each to be ready (demo/child-processes.ts), then it places an order.
  const deadline = Date.now() + 60_000;
  while (!printed.includes("Follow the first one")) {
    if (Date.now() > deadline) throw new Error(`demo did not start:\n${printed}`);
    const { value, done } = await reader.read();
    if (done) {
      const stderr = await new Response(child.stderr).text();
      // "error: GATEWAY_PORT 20123 is taken on 127.0.0.1 (...)": refused before it started anything.
      const taken = /(\d+) is taken on 127\.0\.0\.1/.exec(stderr);
      if (taken) throw new PortTakenError(Number(taken[1]), "demo");
      throw new Error(`demo exited:\n${printed}\n${stderr}`);
    }
    printed += new TextDecoder().decode(value);
  }
  // Keep draining its output so it never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done);
  })();
  void new Response(child.stderr).text();
  const mapLink = /Live map: (http:\/\/\S+)/.exec(printed)?.[1] ?? "";
  return {
    process: child,
    printed,
    ports,
    secretFile,
    gatewayUrl: `http://127.0.0.1:${ports.GATEWAY_PORT}`,
    mapLink,
    opsToken: new URLSearchParams(new URL(mapLink).hash.slice(1)).get("token") ?? "",
    async stop() {
      child.kill("SIGINT");
      return child.exited;
    },
  };
}
