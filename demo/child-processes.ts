import { mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

export interface Child {
  readonly name: string;
  readonly process: Subprocess;
}

/**
 * Starts and stops the demo's processes. Each child's output goes to its own
 * log file; stopping sends SIGTERM (so tiers drain) and SIGKILLs whatever is
 * still alive after the grace period, so Ctrl-C leaves no listener behind.
 */
export function createSupervisor(logDir: string) {
  mkdirSync(logDir, { recursive: true });
  const children: Child[] = [];

  return {
    logDir,
    spawn(name: string, cmd: string[], env: Record<string, string>): Child {
      const log = openSync(join(logDir, `${name}.log`), "w");
      const child = {
        name,
        process: Bun.spawn(cmd, {
          env: { ...process.env, ...env },
          stdout: log,
          stderr: log,
          stdin: "ignore",
        }),
      };
      children.push(child);
      return child;
    },
    /** Children that exited on their own (a crash during the demo). */
    exited(): Child[] {
      return children.filter(
        (child) => child.process.exitCode !== null || child.process.signalCode !== null,
      );
    },
    async stopAll(graceMs = 5_000): Promise<void> {
      // Stop in reverse start order: tiers before the Redis they drain into.
      for (const child of [...children].reverse()) {
        if (child.process.exitCode !== null) continue;
        child.process.kill("SIGTERM");
        const timer = setTimeout(() => child.process.kill("SIGKILL"), graceMs);
        await child.process.exited;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Waits until `url` answers 200, or throws after `timeoutMs` naming what did
 * not come up. Generous: six Bun processes starting at once on a busy 2-core
 * machine can take well over ten seconds.
 */
export async function waitForHttp(name: string, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await Bun.sleep(100);
  }
  throw new Error(`${name} did not become ready at ${url} within ${timeoutMs} ms (${last})`);
}
