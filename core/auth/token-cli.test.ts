import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTokenVerifier } from "./token-verifier";

const SECRET = "cli-secret-0123456789abcdef-0123456789";
const cli = join(import.meta.dir, "token-cli.ts");
const folder = mkdtempSync(join(tmpdir(), "token-cli-"));
const NO_DEMO_SECRET = join(folder, "absent");

function run(args: string[], env: Record<string, string | undefined>) {
  const result = Bun.spawnSync([process.execPath, cli, ...args], {
    env: { PATH: process.env.PATH, DEV_JWT_SECRET_FILE: NO_DEMO_SECRET, ...env },
  });
  return {
    code: result.exitCode,
    stdout: result.stdout.toString().trim(),
    stderr: result.stderr.toString(),
  };
}

test("`./edge token` prints a token the verifier accepts with the claims asked for", async () => {
  const { code, stdout } = run(["--role", "rider", "--sub", "r1", "--city", "london"], {
    JWT_SECRET: SECRET,
  });
  expect(code).toBe(0);
  const identity = await createTokenVerifier({ secret: SECRET }).verify(stdout);
  expect(identity).toMatchObject({ sub: "r1", role: "rider", city: "london" });
});

test("without JWT_SECRET it signs with the secret the demo left, and says so", async () => {
  const file = join(folder, "dev-jwt-secret");
  writeFileSync(file, `${SECRET}\n`);
  const { code, stdout, stderr } = run(["--role", "ops", "--sub", "o1", "--ttl", "60"], {
    DEV_JWT_SECRET_FILE: file,
  });
  expect(code).toBe(0);
  expect(stderr).toContain(file);
  const identity = await createTokenVerifier({ secret: SECRET }).verify(stdout);
  expect(identity).toMatchObject({ sub: "o1", role: "ops" });
  expect(identity.exp - Date.now() / 1000).toBeLessThanOrEqual(60);
});

test("with no secret anywhere it says what to do, without a stack trace", () => {
  const { code, stderr } = run(["--role", "ops", "--sub", "o1"], {});
  expect(code).toBe(2);
  expect(stderr).toContain("./edge demo");
  expect(stderr).toContain("export JWT_SECRET=");
  expect(stderr).not.toContain("    at ");
});

test("--help prints its own usage; bad flags and values end with one line naming them (exit 2)", () => {
  const help = run(["--help"], {});
  expect(help.code).toBe(0);
  expect(help.stdout).toStartWith("usage: ./edge token");
  for (const flag of ["--role", "--sub", "--city", "--ttl"]) expect(help.stdout).toContain(flag);

  const cases: [string[], string][] = [
    [["--sub", "x", "--ttl", "abc"], '--ttl must be a whole number from 1 to 31536000 (got "abc")'],
    [["--sub", "x", "--ttl", "0"], "--ttl must be a whole number"],
    [["--sub", "x", "--bogus"], "Unknown option '--bogus'"],
    [["--sub"], "argument missing"],
    [["--role", "admin", "--sub", "x"], "--role must be one of"],
    [["--role", "ops"], "--sub is required"],
    [["--role", "rider", "--sub", "r1"], "--city is required for riders"],
  ];
  for (const [args, message] of cases) {
    const { code, stderr, stdout } = run(args, { JWT_SECRET: SECRET });
    expect({ args, code, stdout }).toEqual({ args, code: 2, stdout: "" });
    expect(stderr).toContain(message);
    expect(stderr).toContain("--help");
    expect(stderr).not.toContain("    at ");
  }
  const shortSecret = run(["--role", "ops", "--sub", "o1"], { JWT_SECRET: "short" });
  expect(shortSecret.code).toBe(2);
  expect(shortSecret.stderr).toContain("at least 32 characters");
});
