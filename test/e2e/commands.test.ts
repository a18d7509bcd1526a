import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
const scripts = Object.keys(
  ((await Bun.file(join(root, "package.json")).json()) as { scripts: Record<string, string> })
    .scripts,
);

async function edge(...args: string[]) {
  const child = Bun.spawn([join(root, "edge"), ...args], {
    cwd: root,
    env: { ...process.env, JWT_SECRET: "" },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 20_000,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

test("`./edge help` (and --help) lists every command with one line, before installing anything", async () => {
  for (const asked of ["help", "--help", "-h"]) {
    const { code, stdout } = await edge(asked);
    expect(code).toBe(0);
    expect(stdout).toStartWith("usage: ./edge <command>");
    const listed = [...stdout.matchAll(/^ {2}(\S+) {2,}\S/gm)].map((match) => match[1]);
    expect(listed.filter((name) => name !== "help").sort()).toEqual([...scripts].sort());
  }
  const unknown = await edge("nope");
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("unknown command 'nope'");
  expect(unknown.stderr).toContain("  demo ");
});

test("every command answers --help with its own usage, and refuses a flag it does not take", async () => {
  const commands = scripts.filter((script) => script !== "lint" && !script.startsWith("proto:"));
  const helps = await Promise.all(commands.map((name) => edge(name, "--", "--help")));
  // Not `test` itself (its arguments go to bun test: the suite would run itself); one
  // tier stands for the three, which share their entry point.
  const refusing = new Set(["demo", "gateway", "upstream", "token", "bench"]);
  const bads = await Promise.all(
    commands.map((name) => (refusing.has(name) ? edge(name, "--", "--no-such-flag") : undefined)),
  );
  commands.forEach((name, index) => {
    const help = helps[index];
    expect({ name, code: help?.code, stderr: help?.stderr }).toEqual({ name, code: 0, stderr: "" });
    expect(help?.stdout).toStartWith(`usage: ./edge ${name}`);
    const bad = bads[index];
    if (!bad) return;
    expect({ name, code: bad.code }).toEqual({ name, code: 2 });
    expect(bad.stderr).toContain("Unknown option '--no-such-flag'");
    expect(bad.stderr).not.toContain("    at ");
  });
  const badValue = await edge("bench", "--", "--seconds", "ten");
  expect(badValue.code).toBe(2);
  expect(badValue.stderr).toContain("--seconds must be a whole number from 1 to");
  const badPart = await edge("bench", "--", "--only", "kafka");
  expect(badPart.code).toBe(2);
  expect(badPart.stderr).toContain(
    "--only must be ingest, fanout, gateway, geo, live-map, routing, outbox, failover or replay",
  );
});
