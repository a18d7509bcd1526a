import type { Subprocess } from "bun";

/**
 * Node itself, for the peers that must run on it. Under `bun run` (so under
 * `./edge bench` and `./edge test`) bunfig's `run.bun` puts a `node` that is
 * Bun first on PATH (a link in /tmp/bun-node-<version>, to whichever
 * checkout's Bun made it first, so not always this process's binary): every
 * `node` on PATH is asked whether it is Bun, and the first that is not wins.
 */
export function nodeExecutable(): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const node = Bun.which("node", { PATH: dir });
    if (!node) continue;
    const probe = Bun.spawnSync([node, "-e", "process.exit(process.versions.bun ? 1 : 0)"], {
      env: {},
      stdout: "ignore",
      stderr: "ignore",
    });
    if (probe.exitCode === 0) return node;
  }
  throw new Error("Node is needed for the bench's peers (node on PATH)");
}

/** Spawns `bun <script> ...args` with its stdout piped, for a bench part's helper process. */
export function spawnBun(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Subprocess<"ignore", "pipe", "inherit"> {
  return Bun.spawn([process.execPath, script, ...args], {
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
}

/**
 * Spawns `command` with stdin and stdout piped: a helper process the bench
 * drives with lines on its stdin (`send`) and reads with `lineReader`.
 */
export function spawnDriven(command: string[], env: Record<string, string> = {}) {
  const child = Bun.spawn(command, {
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  return Object.assign(child, {
    send(line: string): void {
      child.stdin.write(`${line}\n`);
      child.stdin.flush();
    },
  });
}

/** Reads a child's stdout line by line; `until` resolves with the next line that matches. */
export function lineReader(child: { readonly stdout: ReadableStream<Uint8Array> }) {
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  const lines: string[] = [];
  let partial = "";
  return {
    async until(match: (line: string) => boolean): Promise<string> {
      for (;;) {
        for (let line = lines.shift(); line !== undefined; line = lines.shift()) {
          if (match(line)) return line;
        }
        const { value, done } = await reader.read();
        if (done)
          throw new Error(
            `process exited before printing the expected line (${partial.slice(-200)})`,
          );
        const parts = (partial + decoder.decode(value)).split("\n");
        partial = parts.pop() ?? "";
        lines.push(...parts);
      }
    },
  };
}

/** Waits until `url` answers 200 (a child server starting up). */
export async function waitForOk(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await Bun.sleep(100);
  }
  throw new Error(`not ready at ${url}`);
}
