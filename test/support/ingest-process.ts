import { join } from "node:path";
import type { Subprocess } from "bun";
import { TEST_JWT_SECRET } from "./tokens";

const MAIN = join(import.meta.dir, "..", "..", "location-ingest", "main.ts");

export interface IngestProcess {
  readonly child: Subprocess<"ignore", "pipe", "inherit">;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** `http://127.0.0.1:<grpcPort>`, for a Connect/gRPC transport. */
  readonly grpcUrl: string;
  /** The sum of the `/metrics` samples of `name` that carry `labels` (0 when none). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Log lines the process has written so far. */
  readonly logs: string[];
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, then wait for the exit (a test's cleanup, whatever state the process is in). */
  kill(): Promise<number>;
}

/**
 * Starts `bun location-ingest/main.ts` as its own process on free ports and
 * resolves once it logs that it listens.
 */
export async function spawnIngest(env: Record<string, string>): Promise<IngestProcess> {
  const child = Bun.spawn([process.execPath, MAIN], {
    env: {
      ...process.env,
      JWT_SECRET: TEST_JWT_SECRET,
      INGEST_PORT: "0",
      INGEST_HTTP_PORT: "0",
      LOG_LEVEL: "info",
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  const logs: string[] = [];
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`ingest exited before listening:\n${text}`);
    text += new TextDecoder().decode(value);
    const lines = text.split("\n");
    text = lines.pop() ?? "";
    logs.push(...lines);
    const line = lines.find((l) => l.includes('"ingest listening"'));
    if (!line) continue;
    const { grpcPort, httpPort } = JSON.parse(line) as { grpcPort: number; httpPort: number };
    // Keep reading stdout so the child never blocks on a full pipe; a line may span chunks.
    void (async () => {
      for (;;) {
        const next = await reader.read();
        if (next.done) return;
        const more = (text + new TextDecoder().decode(next.value)).split("\n");
        text = more.pop() ?? "";
        logs.push(...more.filter(Boolean));
      }
    })();
    return {
      child,
      grpcPort,
      httpPort,
      grpcUrl: `http://127.0.0.1:${grpcPort}`,
      logs,
      async metric(name, labels = {}) {
        const body = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
        const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
        let sum = 0;
        for (const line of body.split("\n")) {
          const match = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
          if (match?.[1] !== name) continue;
          if (wanted.every((pair) => match[2]?.includes(pair))) sum += Number(match[3]);
        }
        return sum;
      },
      async stop() {
        child.kill("SIGTERM");
        return child.exited;
      },
      async kill() {
        child.kill("SIGKILL");
        return child.exited;
      },
    };
  }
}
