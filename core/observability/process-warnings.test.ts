// A process's warnings go to its log in place of the runtime's printer; any
// other 'warning' listener (a preload's, an APM agent's) still hears them,
// and NODE_NO_WARNINGS=1 / --no-warnings silence them, as the runtime would.
import { expect, test } from "bun:test";
import { join } from "node:path";

const SCRIPT = `
import pino from "pino";
import { logProcessWarnings } from ${JSON.stringify(join(import.meta.dir, "process-warnings.ts"))};
process.on("warning", (warning) => console.log("other listener heard " + warning.name));
logProcessWarnings(pino());
process.emitWarning("something odd", "ProbeWarning");
`;

async function run(
  flags: string[],
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, ...flags, "-e", SCRIPT], {
    cwd: import.meta.dir,
    env: { ...process.env, NODE_NO_WARNINGS: "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = [new Response(child.stdout).text(), new Response(child.stderr).text()];
  expect(await child.exited).toBe(0);
  return { stdout: await stdout, stderr: await stderr };
}

test("a warning is one log line, not the runtime's stderr text; another listener still hears it", async () => {
  const { stdout, stderr } = await run([]);
  expect(stdout).toContain("other listener heard ProbeWarning");
  const logged = stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
  expect(logged).toEqual([
    expect.objectContaining({ level: 40, msg: "ProbeWarning: something odd" }),
  ]);
  expect(stderr).not.toContain("ProbeWarning");
});

test("NODE_NO_WARNINGS=1 and --no-warnings: no log line, and other listeners still hear it", async () => {
  for (const { stdout, stderr } of [
    await run([], { NODE_NO_WARNINGS: "1" }),
    await run(["--no-warnings"]),
  ]) {
    expect(stdout).toContain("other listener heard ProbeWarning");
    expect(stdout).not.toContain("{");
    expect(stderr).not.toContain("ProbeWarning");
  }
});
